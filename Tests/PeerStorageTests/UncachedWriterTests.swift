import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import PeerStorage

/// Copies that bypass the page cache: whole blocks only, byte-exact, and not left cached.
@Suite struct UncachedWriterTests {
    @Test func onlyWholeBlocksAreTaken() {
        let block = UncachedWriter.blockSize
        #expect(UncachedWriter.blocks(at: 0, count: block)! == (0, block))
        #expect(UncachedWriter.blocks(at: 1, count: 3 * block)! == (block, 2 * block))
        #expect(UncachedWriter.blocks(at: block, count: 2 * block + 5)! == (block, 2 * block))
        #expect(UncachedWriter.blocks(at: 100, count: block) == nil)
        #expect(UncachedWriter.blocks(at: 0, count: block - 1) == nil)
        #expect(UncachedWriter.blocks(at: UInt64.max - 10, count: 5) == nil)
        #expect(UncachedWriter.blocks(at: 5, count: UInt64.max) == nil)
    }

    /// A source and a sized, empty destination in a fresh directory; returns the directory's
    /// descriptor and the source's bytes.
    func files(sourceBytes: Int, destinationBytes: Int) throws -> (dir: String, fd: Int32, source: [UInt8]) {
        let dir = temporaryDirectory()
        let source = (0..<sourceBytes).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 11) }
        try Data(source).write(to: URL(fileURLWithPath: dir + "/source"))
        // Sized, not written, as OutputFile makes it: nothing of it is in the cache to begin with.
        let destination = open(dir + "/destination", O_WRONLY | O_CREAT | O_EXCL, 0o644)
        try #require(destination >= 0)
        defer { close(destination) }
        try #require(ftruncate(destination, off_t(destinationBytes)) == 0)
        let fd = open(dir, O_RDONLY | O_DIRECTORY)
        try #require(fd >= 0)
        return (dir, fd, source)
    }

    @Test func blocksAreCopiedExactlyAndNotCached() throws {
        let block = Int(UncachedWriter.blockSize)
        // More than the staging buffer, so the copy takes two rounds; read from an odd offset.
        let count = UncachedWriter.stagingBytes + 3 * block
        let (dir, fd, source) = try files(sourceBytes: count + 1000, destinationBytes: count + 2 * block)
        defer { close(fd) }
        let writer = try #require(UncachedWriter(directory: fd, name: "destination"))
        let input = open(dir + "/source", O_RDONLY)
        defer { close(input) }
        #expect(writer.copy(from: input, offset: 777, count: UInt64(count), to: UInt64(block)) == .copied)
        #expect(try residentPages(dir + "/destination", offset: block, count: count) == 0)
        let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/destination")))
        #expect(written.count == count + 2 * block)
        #expect(written[..<block].allSatisfy { $0 == 0 })
        #expect(Array(written[block..<(block + count)]) == Array(source[777..<(777 + count)]))
        #expect(written[(block + count)...].allSatisfy { $0 == 0 })
    }

    /// A source read from a block boundary is read direct: the copy fills no cache on
    /// either side.
    @Test func aBlockAlignedSourceIsReadPastTheCache() throws {
        let block = Int(UncachedWriter.blockSize)
        let count = 4 * block
        let (dir, fd, source) = try files(sourceBytes: count, destinationBytes: count)
        defer { close(fd) }
        try dropFromCache(dir + "/source")
        let writer = try #require(UncachedWriter(directory: fd, name: "destination"))
        let input = open(dir + "/source", O_RDONLY)
        defer { close(input) }
        #expect(writer.copy(from: input, offset: 0, count: UInt64(count), to: 0) == .copied)
        #expect(try residentPages(dir + "/source", offset: 0, count: count) == 0)
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/destination"))) == source)
    }

    @Test func misalignedOrShortCopiesFail() throws {
        let block = Int(UncachedWriter.blockSize)
        let (dir, fd, _) = try files(sourceBytes: block, destinationBytes: 4 * block)
        defer { close(fd) }
        let writer = try #require(UncachedWriter(directory: fd, name: "destination"))
        let input = open(dir + "/source", O_RDONLY)
        defer { close(input) }
        #expect(writer.copy(from: input, offset: 0, count: UInt64(block), to: 100) == .failed(EINVAL))
        #expect(writer.copy(from: input, offset: 0, count: 100, to: 0) == .failed(EINVAL))
        // Lengths and offsets no file has are refused before any arithmetic on them.
        #expect(writer.copy(from: input, offset: 0, count: UInt64.max - UInt64(block - 1), to: 0) == .failed(EINVAL))
        #expect(writer.copy(from: input, offset: UInt64.max, count: UInt64(block), to: 0) == .failed(EINVAL))
        // The source ends before the blocks asked for.
        #expect(writer.copy(from: input, offset: 0, count: UInt64(2 * block), to: 0) == .failed(EIO))
    }
}
