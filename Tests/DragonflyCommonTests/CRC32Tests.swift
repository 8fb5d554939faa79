import Foundation
import Testing
@testable import DragonflyCommon

/// The folding CRC-32 (carry-less multiplication) must agree with zlib's at every length,
/// alignment and starting value; it is what every piece digest is checked with.
@Suite struct CRC32Tests {
    func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed | 1
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }

    func zlibOnly(_ data: ArraySlice<UInt8>, _ crc: UInt32) -> UInt32 {
        Array(data).withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress, !buf.isEmpty else { return crc }
            return Hashing.zlibCRC32(crc, base, buf.count)
        }
    }

    @Test func theCheckValueOfCRC32IEEE() {
        #expect(Hashing.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        // Long enough to be folded: 64 copies of the check string.
        let long = Array(String(repeating: "123456789", count: 64).utf8)
        #expect(Hashing.crc32(long) == zlibOnly(long[...], 0))
    }

    @Test func thisMachineFoldsWhenItsCPUCan() throws {
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = flags.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
        let words = Set(line.split(separator: " ").map(String.init))
        #expect(Hashing.useFold == (words.contains("pclmulqdq") && words.contains("sse4_1")))
    }

    @Test func agreesWithZlibAtEveryLengthAndAlignment() {
        let data = bytes(1200, seed: 7)
        for start in [0, 1, 3, 8, 15] {
            for length in 0...(1200 - 16) where length < 300 || length % 61 == 0 {
                let slice = data[start..<(start + length)]
                let folded = Array(slice).withUnsafeBytes { Hashing.crc32($0, continuing: 0x1234_5678) }
                #expect(folded == zlibOnly(slice, 0x1234_5678), "start \(start), length \(length)")
            }
        }
    }

    @Test func continuingInPiecesGivesTheWholeDigest() {
        let data = bytes(3 << 20, seed: 99)
        let whole = zlibOnly(data[...], 0)
        #expect(Hashing.crc32(data) == whole)
        var crc: UInt32 = 0
        var at = 0
        for size in [1, 63, 64, 65, 16_384, 1 << 20, 17, 999_999] where at < data.count {
            let end = min(data.count, at + size)
            crc = data[at..<end].withUnsafeBytes { Hashing.crc32($0, continuing: crc) }
            at = end
        }
        crc = data[at...].withUnsafeBytes { Hashing.crc32($0, continuing: crc) }
        #expect(crc == whole)
    }
}
