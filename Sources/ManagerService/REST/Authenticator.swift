import Foundation
import HTTPServing
import ManagerCore

/// Reads `Authorization: Bearer …` (or the console's `jwt` cookie): a signed-in session
/// token (JWT) or a personal access token. It only identifies the caller; each route says
/// what it requires.
struct Authenticator: Sendable {
    let store: ManagerStore
    let signer: JWTSigner

    /// The context with the caller filled in; no credential leaves it anonymous, a wrong
    /// one is refused (401).
    func identify(_ request: HTTPRequest, _ context: ManagerRequestContext) async throws -> ManagerRequestContext {
        var context = context
        if let token = Self.bearer(request) {
            if let claims = signer.verify(token) {
                let user = try? await store.user(claims.id)
                if let user, user.state == "enable", try await !store.isRevoked(claims) {
                    context.user = user
                    context.session = claims
                }
            } else if let (pat, owner) = try await store.lookUpToken(token) {
                context.user = owner
                context.tokenScopes = pat.scopes
            }
            if context.user == nil { throw ManagerError(.unauthorized, "the token is invalid or expired") }
        }
        return context
    }

    static func bearer(_ request: HTTPRequest) -> String? {
        if let header = request.headers.first(name: "Authorization") {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1]).trimmingCharacters(in: .whitespaces) }
            return nil
        }
        for cookie in request.headers["Cookie"].flatMap({ $0.split(separator: ";") }) {
            let kv = cookie.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0] == "jwt" { return String(kv[1]) }
        }
        return nil
    }
}

extension ManagerRequestContext {
    /// `/api/v1` is for signed-in sessions; personal access tokens belong on `/oapi/v1`.
    func requireSession() throws -> UserRecord {
        let user = try requireUser()
        guard tokenScopes == nil else {
            throw ManagerError(.unauthorized, "personal access tokens are accepted on /oapi/v1, sign in for /api/v1")
        }
        return user
    }

    func requireSessionRoot() throws -> UserRecord {
        _ = try requireSession()
        return try requireRoot()
    }

    /// A personal access token with `scope` (the open API).
    func requireToken(scope: PersonalAccessScope) throws -> UserRecord {
        let user = try requireUser()
        guard let scopes = tokenScopes else {
            throw ManagerError(.unauthorized, "/oapi/v1 takes a personal access token (Authorization: Bearer dfp_…)")
        }
        guard scopes.contains(scope.rawValue) else { throw ManagerError(.forbidden, "the token lacks the \(scope.rawValue) scope") }
        return user
    }

    /// Either kind of credential; writes need root (sessions) or the scope (tokens).
    func requireWriter(scope: PersonalAccessScope) throws -> UserRecord {
        if tokenScopes != nil {
            let owner = try requireToken(scope: scope)
            guard owner.role == UserRole.root.rawValue else { throw ManagerError(.forbidden, "the token's owner may only read") }
            return owner
        }
        return try requireSessionRoot()
    }
}
