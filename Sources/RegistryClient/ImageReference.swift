import Foundation

/// An image named either as Dragonfly's preheat API takes it (the manifest URL,
/// `https://host/v2/<repo>/manifests/<ref>`) or as a reference (`host/repo:tag`,
/// `repo@sha256:…`; Docker Hub names get `registry-1.docker.io` and `library/`).
public struct ImageReference: Sendable, Equatable {
    /// `scheme://host[:port]`
    public var base: String
    public var repository: String
    /// A tag or a digest.
    public var reference: String

    public var manifestURL: String { "\(base)/v2/\(repository)/manifests/\(reference)" }
    public func blobURL(_ digest: String) -> String { "\(base)/v2/\(repository)/blobs/\(digest)" }

    public init(base: String, repository: String, reference: String) {
        self.base = base
        self.repository = repository
        self.reference = reference
    }

    public static func parse(_ text: String) throws(RegistryError) -> ImageReference {
        if text.contains("://") {
            guard let c = URLComponents(string: text), let scheme = c.scheme, let host = c.host,
                  let v2 = c.path.range(of: "/v2/"), let m = c.path.range(of: "/manifests/", options: .backwards),
                  v2.upperBound < m.lowerBound else {
                throw RegistryError("\(text) is not a manifest URL like https://registry/v2/<repository>/manifests/<tag>")
            }
            let port = c.port.map { ":\($0)" } ?? ""
            let reference = String(c.path[m.upperBound...])
            guard !reference.isEmpty else { throw RegistryError("\(text) names no tag or digest") }
            return ImageReference(base: "\(scheme)://\(host)\(port)", repository: String(c.path[v2.upperBound..<m.lowerBound]),
                                  reference: reference)
        }
        var rest = Substring(text)
        var host = "registry-1.docker.io"
        if let slash = rest.firstIndex(of: "/") {
            let first = rest[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" {
                host = first == "docker.io" || first == "index.docker.io" ? "registry-1.docker.io" : String(first)
                rest = rest[rest.index(after: slash)...]
            }
        }
        var reference = "latest"
        if let at = rest.firstIndex(of: "@") {
            reference = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
        } else if let colon = rest.lastIndex(of: ":") {
            reference = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
        }
        var repository = String(rest)
        if host == "registry-1.docker.io", !repository.contains("/") { repository = "library/" + repository }
        guard !repository.isEmpty, !reference.isEmpty,
              repository.allSatisfy({ $0.isLowercase || $0.isNumber || "._-/".contains($0) }) else {
            throw RegistryError("\(text) is not an image reference")
        }
        return ImageReference(base: "https://\(host)", repository: repository, reference: reference)
    }
}
