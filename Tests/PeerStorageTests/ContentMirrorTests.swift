import DragonflyCommon
import Foundation
import NIOCore
import Testing
@testable import PeerStorage
#if canImport(Glibc)
import Glibc
#endif

/// A client's output written from the bytes a piece arrives in, as the store writes them:
/// the mirror answers `holds` only for pieces it has whole and checked; every other piece
/// is left for its owner to copy from the store.
@Suite struct ContentMirrorTests {
    static let pieceLength = IncomingPieceTests.pieceLength
    static let piece = IncomingPieceTests.piece
    /// Two whole pieces and an unaligned third of 100 bytes, so the last one's tail goes
    /// through the cache.
    static let contentLength = 2 * pieceLength + 100
    static let tail: [UInt8] = (0..<100).map { UInt8($0 + 7) }

    /// A store with the task open, and an output file of the task's size mirrored from it.
    struct Fixture {
        let store: PieceStore
        let outputPath: String
        let mirror: ContentMirror

        init(attach: Bool = true) async throws {
            let directory = temporaryDirectory()
            store = try PieceStore(directory: directory)
            try await store.open(taskID: taskID, url: "u", contentLength: UInt64(ContentMirrorTests.contentLength),
                                 pieceLength: UInt64(ContentMirrorTests.pieceLength))
            outputPath = directory + "/output"
            let fd = open(outputPath, O_WRONLY | O_CREAT | O_EXCL, 0o600)
            try #require(fd >= 0)
            defer { close(fd) }
            try #require(ftruncate(fd, off_t(ContentMirrorTests.contentLength)) == 0)
            mirror = try #require(ContentMirror(duplicating: fd))
            if attach { #expect(store.attach(mirror, to: taskID)) }
        }

        func output(_ number: Int, length: Int = ContentMirrorTests.pieceLength) throws -> [UInt8] {
            let all = try [UInt8](Data(contentsOf: URL(fileURLWithPath: outputPath)))
            return Array(all[(number * ContentMirrorTests.pieceLength)...].prefix(length))
        }

        /// Streams `bytes` in as piece `number` in network-sized chunks and commits it.
        @discardableResult
        func receive(_ number: UInt32, _ bytes: [UInt8]) async throws -> TaskMetadata.Piece {
            let incoming = try #require(try await store.receivePiece(taskID: taskID, number: number))
            #expect(incoming.isStreaming)
            for start in stride(from: 0, to: bytes.count, by: 300_007) {
                try await incoming.append(ByteBuffer(bytes: bytes[start..<min(bytes.count, start + 300_007)]))
            }
            return try await incoming.commit(expectedDigest: PieceDigest.of(bytes))
        }
    }

    @Test func piecesReceivedAfterAttachingLandInTheOutputWhole() async throws {
        let f = try await Fixture()
        let incoming = try #require(try await f.store.receivePiece(taskID: taskID, number: 1))
        try await incoming.append(Self.piece)
        // Written, but not yet checked and recorded: not held.
        #expect(!f.mirror.holds(1, digest: PieceDigest.of(Self.piece)))
        let stored = try await incoming.commit(expectedDigest: PieceDigest.of(Self.piece))
        #expect(f.mirror.holds(1, digest: stored.digest))
        #expect(!f.mirror.holds(1, digest: PieceDigest.of(Self.tail)))
        // The whole blocks went past the page cache, as the store's own write did.
        #expect(try residentPages(f.outputPath, offset: Self.pieceLength, count: Self.pieceLength) == 0)
        #expect(try f.output(1) == Self.piece)

        // The unaligned last piece: its tail block through the cache, still whole.
        let last = try await f.receive(2, Self.tail)
        #expect(f.mirror.holds(2, digest: last.digest))
        #expect(try f.output(2, length: 100) == Self.tail)
        // A piece stored whole by `writePiece` is not written into the mirror: the owner copies it.
        let other = try await f.store.writePiece(taskID: taskID, number: 0, bytes: Self.piece)
        #expect(!f.mirror.holds(0, digest: other.digest))
        #expect(try f.output(0) == [UInt8](repeating: 0, count: Self.pieceLength))
    }

    @Test func aWrongCopyIsNotHeldUntilARightOneLands() async throws {
        let f = try await Fixture()
        var corrupt = Self.piece
        corrupt[12_345] ^= 0x40
        do {
            let bad = try #require(try await f.store.receivePiece(taskID: taskID, number: 0))
            try await bad.append(ByteBuffer(bytes: corrupt))
            await #expect(throws: StorageError.self) { try await bad.commit(expectedDigest: PieceDigest.of(Self.piece)) }
        }
        #expect(!f.mirror.holds(0, digest: PieceDigest.of(Self.piece)))
        #expect(!f.mirror.holds(0, digest: PieceDigest.of(corrupt)))
        let good = try await f.receive(0, Self.piece)
        #expect(f.mirror.holds(0, digest: good.digest))
        #expect(try f.output(0) == Self.piece)
    }

    @Test func piecesBegunBeforeAttachingOrAfterDetachingAreNotWritten() async throws {
        let f = try await Fixture(attach: false)
        let early = try #require(try await f.store.receivePiece(taskID: taskID, number: 0))
        #expect(f.store.attach(f.mirror, to: taskID))
        try await early.append(Self.piece)
        let first = try await early.commit()
        #expect(!f.mirror.holds(0, digest: first.digest))
        #expect(try f.output(0) == [UInt8](repeating: 0, count: Self.pieceLength))

        // Detached midway through a piece: nothing more of it is written, and it is not held.
        let late = try #require(try await f.store.receivePiece(taskID: taskID, number: 1))
        try await late.append(ByteBuffer(bytes: Self.piece.prefix(IncomingPiece.batchSize)))
        f.store.detach(f.mirror, from: taskID)
        try await late.append(ByteBuffer(bytes: Self.piece.dropFirst(IncomingPiece.batchSize)))
        let second = try await late.commit()
        #expect(!f.mirror.holds(1, digest: second.digest))
        #expect(try f.output(1).suffix(from: IncomingPiece.batchSize).allSatisfy { $0 == 0 })
        // A task not open cannot be mirrored.
        #expect(!f.store.attach(f.mirror, to: String(repeating: "cd", count: 32)))
    }

    /// An output on a full disk: its pieces are not held (the owner's own copy will report
    /// the error), and the store's pieces are stored as ever.
    @Test func aMirrorThatCannotWriteLosesNothingInTheStore() async throws {
        let directory = temporaryDirectory()
        let store = try PieceStore(directory: directory)
        try await store.open(taskID: taskID, url: "u", contentLength: UInt64(Self.contentLength), pieceLength: UInt64(Self.pieceLength))
        let full = open("/dev/full", O_WRONLY)
        try #require(full >= 0)
        defer { close(full) }
        let mirror = try #require(ContentMirror(duplicating: full))
        #expect(store.attach(mirror, to: taskID))
        let incoming = try #require(try await store.receivePiece(taskID: taskID, number: 0))
        try await incoming.append(ByteBuffer(bytes: Self.piece))
        let stored = try await incoming.commit(expectedDigest: PieceDigest.of(Self.piece))
        #expect(!mirror.holds(0, digest: stored.digest))
        #expect(try await store.readPiece(taskID: taskID, number: 0, verifying: true) == Self.piece)
    }

    /// A streaming copy overtaken by a checked whole one (the end game): the mirror does
    /// not hold the piece, and the overtaken copy writes nothing into it after the takeover.
    @Test func anOvertakenCopyIsNotHeld() async throws {
        let f = try await Fixture()
        let corrupt = Self.piece.map { $0 ^ 0x5a }
        let first = try #require(try await f.store.receivePiece(taskID: taskID, number: 0))
        try await first.append(ByteBuffer(bytes: corrupt.prefix(IncomingPiece.batchSize)))
        let second = try #require(try await f.store.receivePiece(taskID: taskID, number: 0))
        #expect(!second.isStreaming)
        try await second.append(ByteBuffer(bytes: Self.piece))
        let kept = try await second.commit(expectedDigest: PieceDigest.of(Self.piece))
        try await first.append(ByteBuffer(bytes: corrupt.dropFirst(IncomingPiece.batchSize)))
        _ = try await first.commit()
        #expect(!f.mirror.holds(0, digest: kept.digest))
        #expect(try f.output(0).suffix(from: IncomingPiece.batchSize).allSatisfy { $0 == 0 })
    }
}
