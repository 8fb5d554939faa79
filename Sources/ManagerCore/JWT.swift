import DragonflyCommon
import Foundation

/// HS256 JSON Web Tokens for signed-in console and API users (`auth.jwt.key`).
public struct JWTSigner: Sendable {
    public struct Claims: Codable, Sendable {
        public var id: UInt64
        public var name: String
        public var role: String
        public var exp: Int64
        public var orig_iat: Int64
        /// Names this token alone, so signing out can revoke it; nil in tokens signed
        /// before revocation existed.
        public var jti: String?

        /// What a revocation is recorded under.
        public var tokenID: String { jti ?? "\(id):\(orig_iat)" }
    }

    let key: [UInt8]
    public let lifetime: TimeInterval

    public init(key: String, lifetime: TimeInterval = 2 * 24 * 3600) {
        self.key = Array(key.utf8)
        self.lifetime = lifetime
    }

    public func sign(_ user: UserRecord, now: Date = Date()) -> (token: String, expires: Date) {
        let expires = now.addingTimeInterval(lifetime)
        let claims = Claims(id: user.id, name: user.name, role: user.role, exp: Int64(expires.timeIntervalSince1970),
                            orig_iat: Int64(now.timeIntervalSince1970), jti: Secrets.hex(Secrets.randomBytes(16)))
        let header = Self.base64URL(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = Self.base64URL(Array((try? JSONCoding.encoder.encode(claims)) ?? Data()))
        let input = header + "." + payload
        return (input + "." + Self.base64URL(Secrets.hmacSHA256(key: key, message: Array(input.utf8))), expires)
    }

    /// The claims of a token this signer made that has not expired; nil otherwise.
    public func verify(_ token: String, now: Date = Date()) -> Claims? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let header = Self.decodeBase64URL(parts[0]),
              (try? JSONSerialization.jsonObject(with: Data(header))) as? [String: String] == ["alg": "HS256", "typ": "JWT"],
              let signature = Self.decodeBase64URL(parts[2]) else { return nil }
        let expected = Secrets.hmacSHA256(key: key, message: Array("\(parts[0]).\(parts[1])".utf8))
        guard Secrets.constantTimeEqual(signature, expected), let payload = Self.decodeBase64URL(parts[1]),
              let claims = try? JSONCoding.decoder.decode(Claims.self, from: Data(payload)),
              Double(claims.exp) > now.timeIntervalSince1970 else { return nil }
        return claims
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeBase64URL(_ text: Substring) -> [UInt8]? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s).map { Array($0) }
    }
}
