import Foundation
import HTTPServing
import PeerConfig

/// Where a mirrored request goes, and how.
public struct UpstreamTarget: Sendable {
    /// The URL fetched upstream (the `ns` parameter removed).
    public var url: String
    /// `scheme://host[:port]` of the registry.
    public var base: String
    public var insecure: Bool
    /// Credentials configured for this registry, if any.
    public var registry: ProxyConfig.Registry?
}

/// A request the mirror will not forward, with the status and reason the client gets.
public struct MirrorRefusal: Error, Sendable {
    public var status: Int
    public var message: String

    public init(status: Int, message: String) {
        self.status = status
        self.message = message
    }
}

/// Chooses the upstream registry as Dragonfly does: the configured mirror URL by default;
/// with `dynamic: true`, containerd's `?ns=<registry>` or `X-Dragonfly-Registry` may name
/// another. Registries neither configured nor allowed by `dynamic` are refused, so the
/// mirror is not an open proxy.
public struct UpstreamResolver: Sendable {
    let config: ProxyConfig

    public init(config: ProxyConfig) { self.config = config }

    public func resolve(_ request: HTTPRequest) throws(MirrorRefusal) -> UpstreamTarget {
        let uri = request.uri
        if uri.hasPrefix("http://") || uri.hasPrefix("https://") {
            // An absolute URI: the client uses us as an HTTP proxy.
            guard let c = URLComponents(string: uri), let scheme = c.scheme, c.host != nil else {
                throw MirrorRefusal(status: 400, message: "cannot parse \(uri)")
            }
            let base = "\(scheme)://\(c.authority)"
            return try allowed(base, url: uri)
        }
        guard request.path == "/v2" || request.path.hasPrefix("/v2/") else {
            throw MirrorRefusal(status: 404, message: "only the registry API (/v2/) is mirrored here")
        }
        let ns = request.queryItems.first { $0.name == "ns" }?.value
        let named = request.headers.first(name: "X-Dragonfly-Registry") ?? ns
        var base = Self.normalized(config.registryMirrorURL)
        if let named, !named.isEmpty {
            base = baseURL(forNamed: named)
        }
        let rest = request.queryItems.filter { $0.name != "ns" }
        var url = base + request.path
        if !rest.isEmpty, let query = request.query {
            // Keep the client's encoding of everything but ns.
            let kept = query.split(separator: "&").filter { !$0.hasPrefix("ns=") && $0 != "ns" }
            if !kept.isEmpty { url += "?" + kept.joined(separator: "&") }
        }
        return try allowed(base, url: url)
    }

    /// The names Docker Hub's registry goes by: a mirror of one is a mirror of all.
    static let dockerHubHosts: Set<String> = ["docker.io", "index.docker.io", "registry-1.docker.io"]

    /// `docker.io` is served by `registry-1.docker.io`; a bare host takes the scheme of the
    /// matching configured registry, else HTTPS.
    func baseURL(forNamed named: String) -> String {
        if named.contains("://") { return Self.normalized(named) }
        let host = named == "docker.io" || named == "index.docker.io" ? "registry-1.docker.io" : named
        if let r = config.registries.first(where: { $0.isNamed(host) }) { return Self.normalized(r.url) }
        if let mirror = URLComponents(string: config.registryMirrorURL), mirror.authority == host, let scheme = mirror.scheme {
            return "\(scheme)://\(host)"
        }
        return "https://\(host)"
    }

    private func allowed(_ base: String, url: String) throws(MirrorRefusal) -> UpstreamTarget {
        let host = URLComponents(string: base)?.authority ?? base
        // A configured registry is its scheme as well as its host: its credentials never go
        // to `http://` when it was configured as `https://`.
        let registry = config.registries.first { Self.normalized($0.url).lowercased() == base.lowercased() }
        let mirrorHost = URLComponents(string: config.registryMirrorURL)?.authority ?? ""
        let isMirror = Self.dockerHubHosts.contains(mirrorHost) ? Self.dockerHubHosts.contains(host) : mirrorHost == host
        guard isMirror || registry != nil || config.dynamic else {
            throw MirrorRefusal(status: 403, message: "registry \(host) is not configured on this mirror (set proxy.registryMirror.dynamic or add it to proxy.registries)")
        }
        let insecure = registry?.insecure ?? (isMirror ? config.registryMirrorInsecure : false)
        return UpstreamTarget(url: url, base: base, insecure: insecure, registry: registry)
    }

    /// `scheme://host[:port]` without a trailing slash or path.
    public static func normalized(_ url: String) -> String {
        guard let c = URLComponents(string: url), let scheme = c.scheme, c.host != nil else { return url }
        return "\(scheme)://\(c.authority)"
    }

    /// The repository a registry path names (`/v2/<name>/blobs/…` → `<name>`), for token scopes.
    public static func repository(ofPath path: String) -> String? {
        guard path.hasPrefix("/v2/") else { return nil }
        let parts = path.dropFirst(4).split(separator: "/", omittingEmptySubsequences: false)
        guard let marker = parts.lastIndex(where: { ["blobs", "manifests", "tags", "referrers"].contains($0) }), marker > 0 else {
            return nil
        }
        return parts[..<marker].joined(separator: "/")
    }

    /// The `sha256:…` digest a blob path names, if it is well formed (only those are P2P
    /// tasks: the digest is what their content is checked against).
    public static func blobDigest(inPath path: String) -> String? {
        guard let r = path.range(of: "/blobs/") else { return nil }
        let digest = path[r.upperBound...]
        guard digest.hasPrefix("sha256:"), digest.count == 71,
              digest.dropFirst(7).allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return nil }
        return String(digest)
    }
}
