import Foundation
import Testing
@testable import PeerDaemon

/// A client's output assembled from pieces: blocks go past the page cache, the unaligned
/// ends of each piece through it, and the file must come out byte for byte either way.
@Suite struct OutputFileTests {
    @Test(arguments: [
        // Pieces of whole blocks, as a whole task's output.
        [0, 4096, 4096 * 300, 4096 * 301],
        // A range's output: every piece boundary falls mid-block, one piece inside one block.
        [0, 5000, 5100, 70_001, 1_200_000, 1_234_567],
    ])
    func piecesCopiedInAnyOrderMakeTheRightFile(_ cuts: [Int]) throws {
        let fm = FileManager.default
        let root = NSTemporaryDirectory() + "outputfile-\(UUID().uuidString)"
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: root) }
        let skip = 333
        let length = cuts.last!
        let source = (0..<(length + skip + 10)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 13) }
        try Data(source).write(to: URL(fileURLWithPath: root + "/source"))
        let file = try OutputFile(try OutputTarget.check(root + "/out.bin", allowed: [root]), length: UInt64(length))
        for i in (0..<(cuts.count - 1)).reversed() {
            try file.copy(from: root + "/source", offset: UInt64(skip + cuts[i]), length: UInt64(cuts[i + 1] - cuts[i]),
                          to: UInt64(cuts[i]))
        }
        try file.commit()
        let written = try #require(fm.contents(atPath: root + "/out.bin"))
        #expect(written == Data(source[skip..<(skip + length)]))
    }
}
