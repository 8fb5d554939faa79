import AsyncHTTPClient
import DragonflyCommon
import Foundation
import PeerConfig
import NIOCore
import PeerDaemon
import RegistryClient

/// Logs in to registries with the credentials in `proxy.registries`: Basic directly, or
/// the Docker token flow (401 Bearer challenge → token endpoint with Basic credentials →
/// `Authorization: Bearer`). Challenges are learnt once per registry; tokens are kept
/// per repository until shortly before they expire.
actor RegistryAuthenticator {
    private let clients: UpstreamClients
    private var challenges: [String: AuthChallenge?] = [:]
    private var tokens: [String: (value: String, expires: ContinuousClock.Instant)] = [:]

    /// Token realms are named by the registry; the credentials sent there must not go to a
    /// host the origin policy refuses.
    private let policy: OriginPolicy

    init(clients: UpstreamClients, policy: OriginPolicy) {
        self.clients = clients
        self.policy = policy
    }

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
        if let why = await policy.refusal(for: challenge.parameters["realm"] ?? "") {
            throw MirrorRefusal(status: 502, message: "registry \(target.base) names a token realm that is refused: \(why)")
        }
        do {
            return try await RegistryToken.fetch(challenge, scope: scope, basic: basic,
                                                 client: clients.client(insecure: target.insecure))
        } catch let error as RegistryError {
            throw MirrorRefusal(status: 502, message: "registry \(target.base): \(error.message)")
        }
    }
}
