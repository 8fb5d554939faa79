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

    /// PBKDF2-HMAC-SHA256, kept to verify password hashes stored before scrypt.
    public static func pbkdf2SHA256(password: String, salt: [UInt8], iterations: Int, length: Int = 32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        withCString(password) { pc, count in
            salt.withUnsafeBufferPointer { s in
                _ = PKCS5_PBKDF2_HMAC(pc, Int32(count), s.baseAddress, Int32(s.count), Int32(iterations),
                                      EVP_sha256(), Int32(length), &out)
            }
        }
        return out
    }

    /// scrypt (RFC 7914) from OpenSSL: a salted password hash that is slow and needs
    /// `128 * r * 2^logN` bytes of memory per guess. Nil if OpenSSL refuses the parameters.
    public static func scrypt(password: String, salt: [UInt8], logN: Int, r: Int, p: Int, length: Int = 32) -> [UInt8]? {
        guard (1...20).contains(logN), (1...32).contains(r), (1...16).contains(p) else { return nil }
        var out = [UInt8](repeating: 0, count: length)
        let n = UInt64(1) << UInt64(logN)
        let memory = 128 * UInt64(r) * (n + UInt64(p) + 2) + (1 << 20)
        let ok = withCString(password) { pc, count in
            salt.withUnsafeBufferPointer { s in
                EVP_PBE_scrypt(pc, count, s.baseAddress, s.count, n, UInt64(r), UInt64(p), memory, &out, length)
            }
        }
        return ok == 1 ? out : nil
    }

    /// The UTF-8 bytes of `text` with their count; the pointer is valid even when empty.
    static func withCString<R>(_ text: String, _ body: (UnsafePointer<CChar>, Int) -> R) -> R {
        text.withCString { body($0, text.utf8.count) }
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
