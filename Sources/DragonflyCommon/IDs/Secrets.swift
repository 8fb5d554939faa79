import COpenSSL

/// Keyed hashes and randomness for logins and tokens, from OpenSSL.
public enum Secrets {
    /// HMAC-SHA256 of `message` under `key` (JWT HS256 signatures).
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        key.withUnsafeBufferPointer { k in
            message.withUnsafeBufferPointer { m in
                _ = HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), m.baseAddress, m.count, &out, &length)
            }
        }
        return Array(out.prefix(Int(length)))
    }

    /// PBKDF2-HMAC-SHA256: a slow, salted password hash.
    public static func pbkdf2SHA256(password: String, salt: [UInt8], iterations: Int, length: Int = 32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        let pw = Array(password.utf8)
        pw.withUnsafeBufferPointer { p in
            salt.withUnsafeBufferPointer { s in
                p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(p.count, 1)) { pc in
                    _ = PKCS5_PBKDF2_HMAC(pc, Int32(p.count), s.baseAddress, Int32(s.count), Int32(iterations),
                                          EVP_sha256(), Int32(length), &out)
                }
            }
        }
        return out
    }

    /// Cryptographically strong random bytes.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        guard RAND_bytes(&out, Int32(count)) == 1 else {
            // OpenSSL's generator failing means the process cannot make secrets at all.
            fatalError("RAND_bytes failed")
        }
        return out
    }

    public static func hex(_ bytes: some Sequence<UInt8>) -> String { Hashing.hex(bytes) }

    /// Compares without an early exit, so timing does not reveal how much matched.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
