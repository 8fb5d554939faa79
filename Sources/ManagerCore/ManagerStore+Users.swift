import DragonflyCommon
import Foundation
import SQLStore

public enum UserRole: String, Codable, Sendable {
    case root, guest
}

/// Bounds on what sign-up and sign-in take, so a request cannot store or hash megabytes.
public enum UserLimits {
    public static let maxNameBytes = 256
    public static let maxPasswordBytes = 1024
    public static let maxEmailBytes = 254
}

extension ManagerStore {
    /// scrypt's cost: 2^15 iterations of 8-block mixing (32 MiB a guess), about 0.1 s here.
    static let scryptLogN = 15, scryptR = 8, scryptP = 1

    /// `scrypt$<logN>$<r>$<p>$<salt hex>$<hash hex>`.
    static func hashPassword(_ password: String) -> String {
        let salt = Secrets.randomBytes(16)
        guard let hash = Secrets.scrypt(password: password, salt: salt, logN: scryptLogN, r: scryptR, p: scryptP) else {
            // Fixed, valid parameters: OpenSSL refusing them means it cannot hash at all.
            fatalError("scrypt failed with the built-in parameters")
        }
        return "scrypt$\(scryptLogN)$\(scryptR)$\(scryptP)$\(Secrets.hex(salt))$\(Secrets.hex(hash))"
    }

    /// Checks scrypt hashes and the PBKDF2 ones written by earlier versions.
    static func passwordMatches(_ password: String, stored: String) -> Bool {
        let parts = stored.split(separator: "$")
        if parts.count == 6, parts[0] == "scrypt", let logN = Int(parts[1]), let r = Int(parts[2]), let p = Int(parts[3]),
           let salt = bytes(fromHex: parts[4]), let expected = bytes(fromHex: parts[5]), !expected.isEmpty, expected.count <= 64,
           let hash = Secrets.scrypt(password: password, salt: salt, logN: logN, r: r, p: p, length: expected.count) {
            return Secrets.constantTimeEqual(hash, expected)
        }
        guard parts.count == 4, parts[0] == "pbkdf2-sha256", let iterations = Int(parts[1]), (1...10_000_000).contains(iterations),
              let salt = bytes(fromHex: parts[2]), let expected = bytes(fromHex: parts[3]), !expected.isEmpty, expected.count <= 64
        else { return false }
        let hash = Secrets.pbkdf2SHA256(password: password, salt: salt, iterations: iterations, length: expected.count)
        return Secrets.constantTimeEqual(hash, expected)
    }

    static func isCurrentHash(_ stored: String) -> Bool {
        stored.hasPrefix("scrypt$\(scryptLogN)$\(scryptR)$\(scryptP)$")
    }

    static func bytes(fromHex hex: Substring) -> [UInt8]? {
        guard hex.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            guard let b = UInt8(hex[i..<j], radix: 16) else { return nil }
            out.append(b)
            i = j
        }
        return out
    }

    public func createUser(name: String, password: String, email: String, role: UserRole) async throws -> UserRecord {
        guard !name.isEmpty, name.count <= 64, name.utf8.count <= UserLimits.maxNameBytes else {
            throw ManagerError(.invalid, "name must be 1-64 characters")
        }
        guard password.count >= 8, password.utf8.count <= UserLimits.maxPasswordBytes else {
            throw ManagerError(.invalid, "password must be 8-\(UserLimits.maxPasswordBytes) bytes")
        }
        // RFC 5321's limit on a forward path; anything longer is not an address.
        guard email.utf8.count <= UserLimits.maxEmailBytes else {
            throw ManagerError(.invalid, "email must be at most \(UserLimits.maxEmailBytes) characters")
        }
        guard !(name + email).unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw ManagerError(.invalid, "name and email must not contain control characters")
        }
        return UserRecord(row: try await insert("users", [
            ("name", .text(name)), ("email", .text(email)), ("password_hash", .text(Self.hashPassword(password))),
            ("role", .text(role.rawValue)),
        ], what: "user"))
    }

    public func users(page: Int, perPage: Int) async throws -> ([UserRecord], Int) {
        let (rows, total) = try await self.page("users", page: page, perPage: perPage)
        return (rows.map(UserRecord.init(row:)), total)
    }

    public func user(_ id: UInt64) async throws -> UserRecord {
        UserRecord(row: try await row("users", id: id, what: "user"))
    }

    /// A hash of nothing anyone knows, checked when the name is unknown so that answer
    /// costs the same scrypt as a wrong password: timing must not tell which names exist.
    static let decoyHash = hashPassword(Secrets.hex(Secrets.randomBytes(16)))

    /// The user, when the name and password match an enabled account.
    public func authenticate(name: String, password: String) async throws -> UserRecord? {
        let row = try await db.query("SELECT * FROM users WHERE name = $1", [.text(name)]).first
        // The hash is checked before the state for the same reason: a disabled account
        // must cost what any other does.
        let stored = row?.string("password_hash") ?? Self.decoyHash
        let matches = Self.passwordMatches(password, stored: stored)
        guard let row, matches, row.string("state") == "enable" else { return nil }
        let user = UserRecord(row: row)
        if !Self.isCurrentHash(row.string("password_hash")) {
            // The password is known right now: store it under the current hash.
            try await db.query("UPDATE users SET password_hash = $1 WHERE id = $2",
                               [.text(Self.hashPassword(password)), SQLValue(user.id)])
        }
        return user
    }

    // MARK: - Signed-out sessions

    /// Refuses the session's token from now until it would have expired anyway.
    public func revokeSession(_ claims: JWTSigner.Claims) async throws {
        try await db.query("DELETE FROM revoked_tokens WHERE expires_at < $1", [.int(Self.now)])
        try await db.query("INSERT INTO revoked_tokens (token_id, expires_at) VALUES ($1, $2) ON CONFLICT (token_id) DO NOTHING",
                           [.text(claims.tokenID), .int(claims.exp)])
    }

    public func isRevoked(_ claims: JWTSigner.Claims) async throws -> Bool {
        try await !db.query("SELECT token_id FROM revoked_tokens WHERE token_id = $1", [.text(claims.tokenID)]).isEmpty
    }

    // MARK: - Personal access tokens

    /// Creates a token; its secret is in the returned record's `token` and nowhere else.
    public func createToken(userID: UInt64, name: String, bio: String, scopes: [String], expiresAt: Date) async throws -> TokenRecord {
        guard !name.isEmpty else { throw ManagerError(.invalid, "name is required") }
        let known = Set(PersonalAccessScope.allCases.map(\.rawValue))
        guard !scopes.isEmpty, scopes.allSatisfy(known.contains) else {
            throw ManagerError(.invalid, "scopes must be some of \(known.sorted().joined(separator: ", "))")
        }
        guard expiresAt > Date() else { throw ManagerError(.invalid, "expired_at must be in the future") }
        let secret = "dfp_" + Secrets.randomToken(bytes: 24)
        var record = TokenRecord(row: try await insert("personal_access_tokens", [
            ("name", .text(name)), ("bio", .text(bio)), ("token_hash", .text(Hashing.sha256Hex(Array(secret.utf8)))),
            ("scopes", .text(Self.json(scopes))), ("expired_at", .int(Int64(expiresAt.timeIntervalSince1970))),
            ("user_id", SQLValue(userID)),
        ], what: "personal access token"))
        record.token = secret
        return record
    }

    public func tokens(page: Int, perPage: Int, userID: UInt64?) async throws -> ([TokenRecord], Int) {
        let (rows, total) = try await self.page("personal_access_tokens", where: userID.map { [("user_id", SQLValue($0))] } ?? [],
                                                page: page, perPage: perPage)
        return (rows.map(TokenRecord.init(row:)), total)
    }

    public func token(_ id: UInt64) async throws -> TokenRecord {
        TokenRecord(row: try await row("personal_access_tokens", id: id, what: "personal access token"))
    }

    public func deleteToken(_ id: UInt64) async throws {
        try await delete("personal_access_tokens", id: id, what: "personal access token")
    }

    /// The token and its owner, when `secret` is an active, unexpired token.
    public func lookUpToken(_ secret: String) async throws -> (TokenRecord, UserRecord)? {
        guard let row = try await db.query("SELECT * FROM personal_access_tokens WHERE token_hash = $1",
                                           [.text(Hashing.sha256Hex(Array(secret.utf8)))]).first else { return nil }
        let token = TokenRecord(row: row)
        guard token.state == "active", token.expired_at > Date() else { return nil }
        let owner = try await user(token.user_id)
        guard owner.state == "enable" else { return nil }
        return (token, owner)
    }
}

/// What a personal access token may be used for on `/oapi/v1`.
public enum PersonalAccessScope: String, CaseIterable, Sendable {
    case job, cluster, preheat
}
