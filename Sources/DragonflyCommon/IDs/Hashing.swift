import COpenSSL
import CZlibShim

/// Digests over bytes, from the C libraries we already link (OpenSSL, zlib).
public enum Hashing {
    public static func sha256Hex(_ bytes: some Collection<UInt8>) -> String { evpHex(bytes, EVP_sha256()) }
    public static func sha512Hex(_ bytes: some Collection<UInt8>) -> String { evpHex(bytes, EVP_sha512()) }

    /// CRC-32/IEEE, the checksum zlib computes and Dragonfly's pieces carry.
    /// CRC-32 of bytes in place, continuing `crc` (a piece hashed batch by batch).
    /// Whole 16-byte blocks of at least 64 bytes go through the carry-less-multiply fold
    /// when the CPU has it (`crc32_fold.c`), the rest through zlib.
    public static func crc32(_ buffer: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), buffer.count > 0 else { return crc }
        var crc = crc
        var done = 0
        if useFold, buffer.count >= 64 {
            done = buffer.count & ~15
            crc = ~czlib_crc32_fold(~crc, base, done)
        }
        guard done < buffer.count else { return crc }
        return zlibCRC32(crc, base + done, buffer.count - done)
    }

    public static func crc32(_ bytes: some Collection<UInt8>, continuing crc: UInt32 = 0) -> UInt32 {
        Array(bytes).withUnsafeBytes { crc32($0, continuing: crc) }
    }

    /// zlib's crc32, fed at most 1 GiB at a time (its length is a 32-bit `uInt`).
    static func zlibCRC32(_ crc: UInt32, _ base: UnsafePointer<UInt8>, _ count: Int) -> UInt32 {
        var crc = uLong(crc)
        var at = 0
        while at < count {
            let n = min(count - at, 1 << 30)
            crc = CZlibShim.crc32(crc, base + at, uInt(n))
            at += n
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    static let useFold = czlib_crc32_fold_available() != 0

    private static func evpHex(_ bytes: some Collection<UInt8>, _ md: OpaquePointer?) -> String {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        Array(bytes).withUnsafeBufferPointer { buf in
            _ = EVP_Digest(buf.baseAddress, buf.count, &out, &length, md, nil)
        }
        return hex(out.prefix(Int(length)))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var s = [UInt8]()
        for b in bytes {
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 15)])
        }
        return String(decoding: s, as: UTF8.self)
    }
}

/// An incremental SHA-256/SHA-512 over a stream of chunks (whole-content digests of large files).
public final class StreamingDigest {
    private let ctx: OpaquePointer
    public init?(algorithm: String) {
        let md: OpaquePointer?
        switch algorithm {
        case "sha256": md = EVP_sha256()
        case "sha512": md = EVP_sha512()
        default: return nil
        }
        guard let ctx = EVP_MD_CTX_new() else { return nil }
        self.ctx = ctx
        EVP_DigestInit_ex(ctx, md, nil)
    }
    deinit { EVP_MD_CTX_free(ctx) }

    public func update(_ bytes: some Collection<UInt8>) {
        Array(bytes).withUnsafeBufferPointer { _ = EVP_DigestUpdate(ctx, $0.baseAddress, $0.count) }
    }

    public func finalizeHex() -> String {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(ctx, &out, &length)
        return Hashing.hex(out.prefix(Int(length)))
    }
}
