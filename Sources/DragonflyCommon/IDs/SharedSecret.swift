/// A secret callers present (the cluster's registration secret), checked without telling
/// anything by timing: both sides are HMAC'd under a key made at start, and the digests,
/// always of one length, are compared in constant time.
public struct SharedSecret: Sendable {
    private let key: [UInt8]
    private let expected: [UInt8]

    /// Nil for no secret (nil or empty).
    public init?(_ secret: String?) {
        guard let secret, !secret.isEmpty else { return nil }
        key = Secrets.randomBytes(32)
        expected = Secrets.hmacSHA256(key: key, message: Array(secret.utf8))
    }

    public func matches(_ presented: String) -> Bool {
        Secrets.constantTimeEqual(Secrets.hmacSHA256(key: key, message: Array(presented.utf8)), expected)
    }
}
