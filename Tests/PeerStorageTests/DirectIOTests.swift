import DragonflyCommon
import Foundation
import Locking
import NIOCore
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import PeerStorage

/// Content past the page cache: whole blocks direct, the rest through the cache, every
/// byte where it belongs, and no page of the direct part left cached.
@Suite struct DirectIOTests {
    static let block = Int(DirectIO.blockSize)

    func bytes(_ count: Int, seed: Int = 0) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 + seed) &* 151 &+ ($0 >> 10)) }
    }

    /// An empty file of `size` bytes (sized, not written: nothing of it is cached).
    func sizedFile(_ size: Int) throws -> String {
        let path = temporaryDirectory() + "/content"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        try #require(fd >= 0)
        defer { close(fd) }
        try #require(ftruncate(fd, off_t(size)) == 0)
        return path
    }

    @Test func aWriteSendsItsWholeBlocksDirectAndItsEdgesThroughTheCache() throws {
        let block = Self.block
        // From mid-block, across more than one staging buffer, to mid-block.
        let offset = block + 100
        let data = bytes(DirectIO.stagingBytes + 2 * block + 300)
        let path = try sizedFile(offset + data.count + block)
        let direct = DirectIO()
        try PieceStore.writeBytes(data, to: path, offset: UInt64(offset), taskID: "t", serializedBy: Locked(()), direct: direct)
        #expect(direct.isUsable, "this file system refused O_DIRECT: the test cannot show what it is for")
        let whole = try #require(DirectIO.blocks(at: UInt64(offset), count: UInt64(data.count)))
        #expect(whole.start == UInt64(2 * block))
        #expect(try residentPages(path, offset: Int(whole.start), count: Int(whole.count)) == 0)
        let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(Array(written[offset..<(offset + data.count)]) == data)
        #expect(written[..<offset].allSatisfy { $0 == 0 } && written[(offset + data.count)...].allSatisfy { $0 == 0 })
    }

    @Test func aWriteWithNoWholeBlockGoesThroughTheCache() throws {
        let path = try sizedFile(3 * Self.block)
        let data = bytes(Self.block - 1, seed: 9)
        let direct = DirectIO()
        try PieceStore.writeBytes(data, to: path, offset: 10, taskID: "t", serializedBy: Locked(()), direct: direct)
        let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(Array(written[10..<(10 + data.count)]) == data)
    }

    /// The last piece of a task ends mid-block, where the file ends: its whole blocks are
    /// asked for and the file's end cuts the read short, which is not an error.
    @Test func aReadFromABlockGoesDirectToTheFilesEnd() throws {
        let data = bytes(DirectIO.stagingBytes + 3 * Self.block + 1000, seed: 3)
        let path = temporaryDirectory() + "/content"
        try Data(data).write(to: URL(fileURLWithPath: path))
        try dropFromCache(path)
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let direct = DirectIO()
        var got: [UInt8] = []
        var rounds = 0
        let start = Self.block
        #expect(try direct.read(fd: fd, offset: UInt64(start), length: UInt64(data.count - start)) { got += $0; rounds += 1 })
        #expect(got == Array(data[start...]))
        #expect(rounds == 2)
        #expect(try residentPages(path, offset: 0, count: data.count) == 0)
        // Past the file's end is an error, not a short answer.
        #expect(throws: StorageError.self) {
            try direct.read(fd: fd, offset: UInt64(start), length: UInt64(data.count)) { _ in }
        }
        // Off a block boundary it declines, and the caller reads through the cache.
        #expect(try direct.read(fd: fd, offset: 100, length: 10) { _ in Issue.record("read despite the offset") } == false)
    }

    /// Pieces stored as they arrive and whole, read back for an upload: the same bytes, and
    /// none of the content's whole blocks cached along the way.
    @Test func aStoreKeepsPieceContentOutOfTheCache() async throws {
        let pieceLength = 1 << 20
        let data = bytes(2 * pieceLength + 5000, seed: 5)
        let store = try PieceStore(directory: temporaryDirectory())
        try await store.open(taskID: taskID, url: "u", contentLength: UInt64(data.count), pieceLength: UInt64(pieceLength))
        let incoming = try #require(try await store.receivePiece(taskID: taskID, number: 0))
        for start in stride(from: 0, to: pieceLength, by: 70_001) {
            try await incoming.append(ByteBuffer(bytes: data[start..<min(pieceLength, start + 70_001)]))
        }
        _ = try await incoming.commit(expectedDigest: PieceDigest.of(Array(data[..<pieceLength])))
        _ = try await store.writePiece(taskID: taskID, number: 1, bytes: Array(data[pieceLength..<(2 * pieceLength)]))
        _ = try await store.writePiece(taskID: taskID, number: 2, bytes: Array(data[(2 * pieceLength)...]))
        let path = store.contentPath(taskID)
        #expect(try residentPages(path, offset: 0, count: 2 * pieceLength + 4096) == 0)
        for number in 0..<3 {
            let (handle, piece) = try await store.openPiece(taskID: taskID, number: UInt32(number))
            defer { try? handle.close() }
            #expect(store.readsDirect(offset: piece.offset))
            let read = try await store.read(handle, offset: piece.offset, length: piece.length, after: [7, 7])
            #expect(Array(read.readableBytesView) == [7, 7] + data[Int(piece.offset)..<Int(piece.offset + piece.length)])
            // As the mirror and the persistent tasks' answers read it, checked against its digest.
            #expect(try await store.readPiece(taskID: taskID, number: UInt32(number), verifying: true)
                    == Array(data[Int(piece.offset)..<Int(piece.offset + piece.length)]))
        }
        try await store.finish(taskID: taskID, contentDigest: ContentDigest.compute(.sha256, of: data))
        #expect(try residentPages(path, offset: 0, count: 2 * pieceLength + 4096) == 0)
    }

    @Test func aStoreWithoutDirectIOReadsThroughTheCache() async throws {
        let store = try PieceStore(directory: temporaryDirectory(), directIO: false)
        try await store.open(taskID: taskID, url: "u", contentLength: UInt64(content.count), pieceLength: 4096)
        _ = try await store.writePiece(taskID: taskID, number: 0, bytes: pieceBytes(0))
        #expect(!store.readsDirect(offset: 0))
        #expect(try residentPages(store.contentPath(taskID), offset: 0, count: 4096) == 1)
    }
}
