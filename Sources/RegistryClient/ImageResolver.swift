import AsyncHTTPClient
import Foundation
import NIOCore

/// Finds the blobs of an image through the registry API: Docker v2 and OCI manifests,
/// manifest lists and OCI indexes (one platform chosen), logging in with Basic or the
/// Docker token flow when the registry asks.
public struct ImageResolver: Sendable {
    public struct Resolved: Sendable {
        /// Config and layer blobs, in manifest order.
        public var blobs: [(url: String, digest: String)]
        /// What the blob requests need to carry, when the registry wanted a login.
        public var authorization: String?
    }

    static let accept = [
        "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json",
    ].joined(separator: ", ")

    let client: HTTPClient
    /// Nil when a URL may be fetched, otherwise why not: asked before every manifest and
    /// token request, so a registry cannot send the caller (and its login) to a host the
    /// caller's origin policy refuses.
    public typealias URLCheck = @Sendable (String) async -> String?
    let check: URLCheck

    public init(client: HTTPClient, check: @escaping URLCheck = { _ in nil }) {
        self.client = client
        self.check = check
    }

    public func resolve(_ image: ImageReference, platform: String = "linux/amd64", username: String? = nil, password: String? = nil,
                        headers: [String: String] = [:]) async throws -> Resolved {
        let basic = username.map { "Basic " + Data("\($0):\(password ?? "")".utf8).base64EncodedString() }
        var authorization = headers.first { $0.key.lowercased() == "authorization" }?.value
        var manifest = try await fetch(image.manifestURL, headers: headers, authorization: &authorization, basic: basic,
                                       scope: "repository:\(image.repository):pull")
        if let entries = manifest["manifests"] as? [[String: Any]] {
            let wanted = platform.split(separator: "/").map(String.init)
            guard let chosen = entries.first(where: { entry in
                let p = entry["platform"] as? [String: Any]
                let have = [p?["os"] as? String, p?["architecture"] as? String, p?["variant"] as? String].compactMap { $0 }
                return Array(have.prefix(wanted.count)) == wanted
            }), let digest = chosen["digest"] as? String else {
                throw RegistryError("\(image.manifestURL) has no manifest for platform \(platform)")
            }
            manifest = try await fetch(image.blobURL(digest).replacingOccurrences(of: "/blobs/", with: "/manifests/"),
                                       headers: headers, authorization: &authorization, basic: basic,
                                       scope: "repository:\(image.repository):pull")
        }
        var digests: [String] = []
        if let config = manifest["config"] as? [String: Any], let d = config["digest"] as? String { digests.append(d) }
        for layer in manifest["layers"] as? [[String: Any]] ?? [] {
            if let d = layer["digest"] as? String { digests.append(d) }
        }
        guard !digests.isEmpty else { throw RegistryError("\(image.manifestURL) lists no layers") }
        for d in digests where !(d.hasPrefix("sha256:") && d.count == 71) {
            throw RegistryError("\(image.manifestURL) names a blob \(d) that is not a sha256 digest")
        }
        return Resolved(blobs: digests.map { (image.blobURL($0), $0) }, authorization: authorization)
    }

    /// GETs a manifest, logging in once when answered 401.
    private func fetch(_ url: String, headers: [String: String], authorization: inout String?, basic: String?,
                       scope: String) async throws -> [String: Any] {
        if let why = await check(url) { throw RegistryError("refused \(url): \(why)") }
        for attempt in 0..<2 {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Accept", value: Self.accept)
            for (k, v) in headers where k.lowercased() != "authorization" { request.headers.add(name: k, value: v) }
            if let authorization { request.headers.replaceOrAdd(name: "Authorization", value: authorization) }
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, timeout: .seconds(30))
            } catch {
                throw RegistryError("cannot reach \(url): \(error)")
            }
            let body = try await response.body.collect(upTo: 4 << 20)
            if response.status == .unauthorized, attempt == 0,
               let challenge = response.headers.first(name: "WWW-Authenticate").flatMap(AuthChallenge.init) {
                switch challenge.scheme {
                case "basic":
                    guard let basic else { throw RegistryError("\(url) needs a login and none was given", statusCode: 401) }
                    authorization = basic
                case "bearer":
                    if let realm = challenge.parameters["realm"], let why = await check(realm) {
                        throw RegistryError("\(url) names a token realm that is refused: \(why)")
                    }
                    authorization = "Bearer " + (try await RegistryToken.fetch(challenge, scope: scope, basic: basic, client: client).token)
                default:
                    throw RegistryError("\(url) asks for \(challenge.scheme) authentication", statusCode: 401)
                }
                continue
            }
            guard response.status == .ok else {
                let reason = response.status == .unauthorized ? " (the credentials were refused)" : ""
                throw RegistryError("\(url) answered \(response.status.code) \(response.status.reasonPhrase)\(reason)",
                                    statusCode: Int(response.status.code))
            }
            guard let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] else {
                throw RegistryError("\(url) did not return a JSON manifest")
            }
            return json
        }
        throw RegistryError("\(url) refused the credentials", statusCode: 401)
    }
}
