import AsyncHTTPClient
import DragonflyCommon
import Foundation
import NIOCore
import PeerDaemon

/// A `WWW-Authenticate` challenge: `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"`.
struct AuthChallenge: Sendable, Equatable {
    var scheme: String
    var parameters: [String: String]

    init?(_ header: String) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(of: " ") else {
            guard !trimmed.isEmpty else { return nil }
            scheme = trimmed.lowercased()
            parameters = [:]
            return
        }
        scheme = trimmed[..<space].lowercased()
        parameters = AuthChallenge.parseParameters(String(trimmed[trimmed.index(after: space)...]))
    }

    /// `key="value", key2=value2`; quoted values may hold commas and escaped quotes.
    static func parseParameters(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        var chars = Substring(text)
        while !chars.isEmpty {
            chars = chars.drop { $0 == " " || $0 == "," }
            guard let eq = chars.firstIndex(of: "=") else { break }
            let key = chars[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            chars = chars[chars.index(after: eq)...]
            var value = ""
            if chars.first == "\"" {
                chars = chars.dropFirst()
                var escaped = false
                while let c = chars.first {
                    chars = chars.dropFirst()
                    if escaped { value.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { break } else { value.append(c) }
                }
            } else {
                let end = chars.firstIndex(of: ",") ?? chars.endIndex
                value = chars[..<end].trimmingCharacters(in: .whitespaces)
                chars = chars[end...]
            }
            result[key] = value
        }
        return result
    }
}

/// Logs in to registries with the credentials in `proxy.registries`: Basic directly, or
/// the Docker token flow (401 Bearer challenge → token endpoint with Basic credentials →
/// `Authorization: Bearer`). Challenges are learnt once per registry; tokens are kept
/// per repository until shortly before they expire.
actor RegistryAuthenticator {
    private let clients: UpstreamClients
    private var challenges: [String: AuthChallenge?] = [:]
    private var tokens: [String: (value: String, expires: ContinuousClock.Instant)] = [:]

    init(clients: UpstreamClients) { self.clients = clients }

    /// The `Authorization` value for a request to `target`, or nil when the registry has
    /// no credentials configured or asks for none.
    func authorization(for target: UpstreamTarget, repository: String?) async throws -> String? {
        guard let registry = target.registry, let user = registry.username else { return nil }
        let basic = "Basic " + Data("\(user):\(registry.password ?? "")".utf8).base64EncodedString()
        let challenge: AuthChallenge?
        if let known = challenges[target.base] {
            challenge = known
        } else {
            challenge = try await probe(target)
            challenges[target.base] = challenge
        }
        guard let challenge else { return nil }
        switch challenge.scheme {
        case "basic":
            return basic
        case "bearer":
            let scope = repository.map { "repository:\($0):pull" }
            let key = "\(target.base) \(scope ?? "")"
            if let t = tokens[key], t.expires > .now { return "Bearer \(t.value)" }
            let (token, lifetime) = try await fetchToken(challenge, scope: scope, basic: basic, target: target)
            tokens[key] = (token, .now + .seconds(max(10, lifetime - 10)))
            return "Bearer \(token)"
        default:
            throw MirrorRefusal(status: 502, message: "registry \(target.base) asks for \(challenge.scheme) authentication, which the mirror does not speak")
        }
    }

    /// Forgets what was learnt about a registry, after it refused what we sent.
    func forget(_ target: UpstreamTarget) {
        challenges[target.base] = nil
        tokens = tokens.filter { !$0.key.hasPrefix(target.base + " ") }
    }

    /// `GET /v2/`: a 401 carries the challenge; anything else means no login is needed.
    private func probe(_ target: UpstreamTarget) async throws -> AuthChallenge? {
        let request = HTTPClientRequest(url: target.base + "/v2/")
        let response = try await clients.client(insecure: target.insecure).execute(request, timeout: .seconds(30))
        _ = try? await response.body.collect(upTo: 1 << 20)
        guard response.status == .unauthorized, let header = response.headers.first(name: "WWW-Authenticate") else { return nil }
        return AuthChallenge(header)
    }

    private func fetchToken(_ challenge: AuthChallenge, scope: String?, basic: String,
                            target: UpstreamTarget) async throws -> (String, Int) {
        guard let realm = challenge.parameters["realm"], var url = URLComponents(string: realm) else {
            throw MirrorRefusal(status: 502, message: "registry \(target.base) sent a Bearer challenge without a realm")
        }
        var items = url.queryItems ?? []
        if let service = challenge.parameters["service"] { items.append(URLQueryItem(name: "service", value: service)) }
        if let scope { items.append(URLQueryItem(name: "scope", value: scope)) }
        url.queryItems = items
        guard let text = url.string else { throw MirrorRefusal(status: 502, message: "bad token realm \(realm)") }
        var request = HTTPClientRequest(url: text)
        request.headers.add(name: "Authorization", value: basic)
        let response = try await clients.client(insecure: target.insecure).execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            throw MirrorRefusal(status: 502, message: "token endpoint \(realm) answered \(response.status.code)")
        }
        let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
        guard let token = (json?["token"] ?? json?["access_token"]) as? String, !token.isEmpty else {
            throw MirrorRefusal(status: 502, message: "token endpoint \(realm) returned no token")
        }
        return (token, (json?["expires_in"] as? Int) ?? 60)
    }
}
