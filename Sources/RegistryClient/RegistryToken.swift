import AsyncHTTPClient
import Foundation
import NIOCore

/// A registry (or its token service) refused or answered nonsense; the message says how.
public struct RegistryError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var statusCode: Int?
    public var description: String { message }
    public init(_ message: String, statusCode: Int? = nil) {
        self.message = message
        self.statusCode = statusCode
    }
}

/// The Docker token flow's second step: GET the challenge's realm with service and scope,
/// authenticated with Basic credentials (or anonymously), and read `token`/`access_token`.
public enum RegistryToken {
    public static func fetch(_ challenge: AuthChallenge, scope: String?, basic: String?,
                             client: HTTPClient) async throws -> (token: String, lifetime: Int) {
        guard let realm = challenge.parameters["realm"], var url = URLComponents(string: realm) else {
            throw RegistryError("Bearer challenge without a realm")
        }
        var items = url.queryItems ?? []
        if let service = challenge.parameters["service"] { items.append(URLQueryItem(name: "service", value: service)) }
        if let scope { items.append(URLQueryItem(name: "scope", value: scope)) }
        url.queryItems = items
        guard let text = url.string else { throw RegistryError("bad token realm \(realm)") }
        var request = HTTPClientRequest(url: text)
        if let basic { request.headers.add(name: "Authorization", value: basic) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            throw RegistryError("token endpoint \(realm) answered \(response.status.code)", statusCode: Int(response.status.code))
        }
        let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
        guard let token = (json?["token"] ?? json?["access_token"]) as? String, !token.isEmpty else {
            throw RegistryError("token endpoint \(realm) returned no token")
        }
        return (token, lifetime(json?["expires_in"]))
    }

    /// `expires_in` in seconds, as the token service says it, held to what the Docker token
    /// spec allows: at least 60 (its default too), and here at most a day, so no answer can
    /// make the arithmetic on it overflow or keep a token for ever.
    static func lifetime(_ value: Any?) -> Int {
        guard let seconds = value as? Int else { return 60 }
        return min(max(seconds, 60), 86_400)
    }
}
