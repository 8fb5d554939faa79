/// A whole-content digest as Dragonfly writes it: `sha256:<64 hex>`, `sha512:<128 hex>`
/// or `crc32:<decimal>` (10 characters as the Rust client requires).
public struct ContentDigest: Equatable, Sendable, CustomStringConvertible {
    public enum Algorithm: String, Sendable { case crc32, sha256, sha512 }
    public let algorithm: Algorithm
    public let encoded: String

    public init(parsing text: String) throws(ConfigError) {
        guard let colon = text.firstIndex(of: ":") else {
            throw ConfigError("invalid digest \(text): expected algorithm:encoded")
        }
        let name = String(text[..<colon]), value = String(text[text.index(after: colon)...])
        guard let algorithm = Algorithm(rawValue: name) else {
            throw ConfigError("invalid digest algorithm: \(name)")
        }
        let expected = [Algorithm.crc32: 10, .sha256: 64, .sha512: 128][algorithm] ?? 0
        guard value.count == expected else {
            throw ConfigError("invalid \(name) digest length: \(value.count), expected \(expected)")
        }
        // A digest names a task and so a file: nothing but its own alphabet may pass.
        let allowed: (UInt8) -> Bool = algorithm == .crc32 ? { $0 >= 48 && $0 <= 57 }
            : { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
        guard value.utf8.allSatisfy(allowed) else {
            throw ConfigError("invalid \(name) digest: \(algorithm == .crc32 ? "decimal digits" : "lowercase hex") expected")
        }
        self.algorithm = algorithm
        self.encoded = value
    }

    public init(algorithm: Algorithm, encoded: String) {
        self.algorithm = algorithm
        self.encoded = encoded
    }

    public var description: String { "\(algorithm.rawValue):\(encoded)" }

    /// The digest of `bytes` with this digest's algorithm.
    public static func compute(_ algorithm: Algorithm, of bytes: some Collection<UInt8>) -> ContentDigest {
        switch algorithm {
        case .crc32: return ContentDigest(algorithm: .crc32, encoded: String(Hashing.crc32(bytes)))
        case .sha256: return ContentDigest(algorithm: .sha256, encoded: Hashing.sha256Hex(bytes))
        case .sha512: return ContentDigest(algorithm: .sha512, encoded: Hashing.sha512Hex(bytes))
        }
    }
}

/// A piece's digest as the Rust client writes it: `crc32:<decimal>`.
public enum PieceDigest {
    public static func of(_ bytes: some Collection<UInt8>) -> String { "crc32:\(Hashing.crc32(bytes))" }
    /// The digest of a piece whose CRC-32 was computed as it arrived.
    public static func crc32(_ value: UInt32) -> String { "crc32:\(value)" }
}
