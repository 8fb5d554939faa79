import DragonflyCommon
import Foundation
import NIOCore
import Testing
@testable import PeerStorage

/// A piece stored while it arrives: written in batches, recorded only when whole.
@Suite struct IncomingPieceTests {
    /// Two and a half batches, so the piece is written in three.
    static let pieceLength = IncomingPiece.batchSize * 5 / 2
    static let piece: [UInt8] = (0..<pieceLength).map { UInt8(truncatingIfNeeded: $0 &* 11 &+ $0 >> 9) }

    func storeWithTask() async throws -> PieceStore {
        let store = try PieceStore(directory: temporaryDirectory())
        try await store.open(taskID: taskID, url: "u", contentLength: UInt64(2 * Self.pieceLength), pieceLength: UInt64(Self.pieceLength))
        return store
    }

    /// Feeds `bytes` in chunks of `size`, as a network would.
    func feed(_ bytes: [UInt8], to incoming: IncomingPiece, chunk size: Int) async throws -> Int {
        var took = 0
        for start in stride(from: 0, to: bytes.count, by: size) {
            took += try await incoming.append(ByteBuffer(bytes: bytes[start..<min(bytes.count, start + size)]))
        }
        return took
    }

    @Test func chunksOfAnySizeMakeTheSamePieceAsOneWrite() async throws {
        let store = try await storeWithTask()
        let incoming = try #require(try await store.receivePiece(taskID: taskID, number: 1))
        #expect(try await feed(Self.piece, to: incoming, chunk: 65_537) == Self.pieceLength)
        // Written but not recorded: nobody can read it yet.
        #expect(try await store.metadata(taskID).pieces[1] == nil)
        await #expect(throws: StorageError.self) { try await store.readPiece(taskID: taskID, number: 1) }
        let stored = try await incoming.commit(expectedDigest: PieceDigest.of(Self.piece))
        #expect(stored.digest == PieceDigest.of(Self.piece))
        #expect(try await store.readPiece(taskID: taskID, number: 1, verifying: true) == Self.piece)
        // A piece that is here is not received again.
        #expect(try await store.receivePiece(taskID: taskID, number: 1) == nil)
    }

    /// Content read in place is a slice in the middle of its message's array: what is
    /// written is the slice's bytes, not the array's from its start. Batch-sized slices
    /// are written as they are; a slice after gathered bytes goes through the batch.
    @Test func slicesOfALargerArrayAreWrittenFromWhereTheyStart() async throws {
        let store = try await storeWithTask()
        let head: [UInt8] = [9, 9, 9, 9, 9, 9, 9]
        let wire = head + Self.piece + head
        let content = wire[head.count..<(head.count + Self.pieceLength)]
        let incoming = try #require(try await store.receivePiece(taskID: taskID, number: 1))
        let cuts = [0, IncomingPiece.batchSize, IncomingPiece.batchSize + 1000, Self.pieceLength]
        for (from, to) in zip(cuts, cuts.dropFirst()) {
            try await incoming.append(content[(content.startIndex + from)..<(content.startIndex + to)])
        }
        let stored = try await incoming.commit(expectedDigest: PieceDigest.of(Self.piece))
        #expect(stored.digest == PieceDigest.of(Self.piece))
        #expect(try await store.readPiece(taskID: taskID, number: 1, verifying: true) == Self.piece)
        // A piece sent whole, as a slice, is checked and written the same way.
        let whole = try await store.writePiece(taskID: taskID, number: 0, bytes: content, expectedDigest: PieceDigest.of(Self.piece))
        #expect(whole.digest == PieceDigest.of(Self.piece))
        #expect(try await store.readPiece(taskID: taskID, number: 0, verifying: true) == Self.piece)
    }

    @Test func aShortPieceIsNotRecordedAndExtraBytesAreNotTaken() async throws {
        let store = try await storeWithTask()
        let short = try #require(try await store.receivePiece(taskID: taskID, number: 0))
        _ = try await feed(Array(Self.piece.dropLast(10)), to: short, chunk: 1 << 20)
        await #expect(throws: StorageError.self) { try await short.commit() }
        #expect(try await store.metadata(taskID).pieces[0] == nil)

        let long = try #require(try await store.receivePiece(taskID: taskID, number: 0))
        #expect(try await feed(Self.piece + [1, 2, 3], to: long, chunk: 300_000) == Self.pieceLength)
        #expect(long.remaining == 0)
    }

    @Test func aDigestThatDisagreesKeepsNothing() async throws {
        let store = try await storeWithTask()
        let incoming = try #require(try await store.receivePiece(taskID: taskID, number: 0))
        var corrupt = Self.piece
        corrupt[Self.pieceLength / 2] ^= 1
        _ = try await feed(corrupt, to: incoming, chunk: 1 << 16)
        await #expect(throws: StorageError.self) { try await incoming.commit(expectedDigest: PieceDigest.of(Self.piece)) }
        #expect(try await store.metadata(taskID).pieces[0] == nil)
    }

    @Test func anAttemptThatFailedMidwayIsOverwrittenByTheNext() async throws {
        let store = try await storeWithTask()
        let failed = try #require(try await store.receivePiece(taskID: taskID, number: 0))
        _ = try await feed(Array(repeating: 0xee, count: Self.pieceLength / 2), to: failed, chunk: 1 << 20)
        let retry = try #require(try await store.receivePiece(taskID: taskID, number: 0))
        _ = try await feed(Self.piece, to: retry, chunk: 1 << 20)
        #expect(try await retry.commit().digest == PieceDigest.of(Self.piece))
        #expect(try await store.readPiece(taskID: taskID, number: 0) == Self.piece)
    }

    @Test func aTaskDeletedWhileAPieceArrivesIsNotBroughtBack() async throws {
        let store = try await storeWithTask()
        let incoming = try #require(try await store.receivePiece(taskID: taskID, number: 0))
        _ = try await feed(Self.piece, to: incoming, chunk: 1 << 20)
        try await store.delete(taskID: taskID)
        await #expect(throws: StorageError.self) { try await incoming.commit() }
        await #expect(throws: StorageError.self) { try await store.metadata(taskID) }
    }

    @Test func aCommittedPieceSurvivesARestart() async throws {
        let dir = temporaryDirectory()
        do {
            let store = try PieceStore(directory: dir)
            try await store.open(taskID: taskID, url: "u", contentLength: UInt64(2 * Self.pieceLength), pieceLength: UInt64(Self.pieceLength))
            let incoming = try #require(try await store.receivePiece(taskID: taskID, number: 1))
            _ = try await feed(Self.piece, to: incoming, chunk: 1 << 18)
            _ = try await incoming.commit()
        }
        let again = try PieceStore(directory: dir)
        #expect(try await again.readPiece(taskID: taskID, number: 1) == Self.piece)
    }

    // MARK: - Two copies of one piece (the end game, or two downloads of one task)

    @Test func aSecondCopyGathersInMemoryAndOvertakesTheFirst() async throws {
        let store = try await storeWithTask()
        let corrupt = Self.piece.map { $0 ^ 0x5a }
        let first = try #require(try await store.receivePiece(taskID: taskID, number: 0))
        #expect(first.isStreaming)
        // The first copy is corrupt and half written when the second begins.
        _ = try await feed(Array(corrupt.prefix(Self.pieceLength / 2)), to: first, chunk: 1 << 20)
        let second = try #require(try await store.receivePiece(taskID: taskID, number: 0))
        #expect(!second.isStreaming)
        _ = try await feed(Self.piece, to: second, chunk: 100_000)
        #expect(try await second.commit(expectedDigest: PieceDigest.of(Self.piece)).digest == PieceDigest.of(Self.piece))
        // The first goes on arriving: none of it reaches the recorded piece.
        _ = try await feed(Array(corrupt.suffix(Self.pieceLength - Self.pieceLength / 2)), to: first, chunk: 1 << 20)
        #expect(try await first.commit(expectedDigest: PieceDigest.of(corrupt)).digest == PieceDigest.of(Self.piece))
        #expect(try await store.readPiece(taskID: taskID, number: 0, verifying: true) == Self.piece)
    }

    @Test func aCopyGivenUpFreesThePieceForTheNextToStream() async throws {
        let store = try await storeWithTask()
        var first = try await store.receivePiece(taskID: taskID, number: 1)
        #expect(first?.isStreaming == true)
        _ = try await feed(Array(Self.piece.prefix(1000)), to: try #require(first), chunk: 1000)
        first = nil
        let next = try #require(try await store.receivePiece(taskID: taskID, number: 1))
        #expect(next.isStreaming)
        _ = try await feed(Self.piece, to: next, chunk: 1 << 19)
        #expect(try await next.commit().digest == PieceDigest.of(Self.piece))
    }

    /// Copies of one piece, some corrupted in transit, arriving at once in chunks of any
    /// size: whichever land, the recorded piece is the true one. Before claims, a corrupt
    /// copy still being written could overwrite a piece already recorded.
    @Test func concurrentCopiesNeverMixInTheRecordedPiece() async throws {
        let honestDigest = PieceDigest.of(Self.piece)
        for round in 0..<12 {
            let store = try await storeWithTask()
            await withTaskGroup(of: Void.self) { group in
                for copy in 0..<6 {
                    group.addTask {
                        var bytes = Self.piece
                        if copy % 2 == 1 { bytes[(round * 7919 + copy * 104_729) % bytes.count] ^= 0xff }
                        guard let incoming = try? await store.receivePiece(taskID: taskID, number: 0) else { return }
                        let size = [4096, 65_537, 1 << 20, 300_001][(round + copy) % 4]
                        for start in stride(from: 0, to: bytes.count, by: size) {
                            _ = try? await incoming.append(ByteBuffer(bytes: bytes[start..<min(bytes.count, start + size)]))
                            await Task.yield()
                        }
                        _ = try? await incoming.commit(expectedDigest: honestDigest)
                    }
                }
            }
            let recorded = try await store.metadata(taskID).pieces[0]
            #expect(recorded?.digest == honestDigest, "round \(round)")
            #expect(try await store.readPiece(taskID: taskID, number: 0, verifying: true) == Self.piece, "round \(round)")
        }
    }

    /// A piece still arriving when its task is deleted and opened afresh (the origin
    /// changed) must not write into the new incarnation's file.
    @Test func aWriterOfADeletedTaskDoesNotWriteIntoItsSuccessor() async throws {
        let store = try await storeWithTask()
        let stale = try #require(try await store.receivePiece(taskID: taskID, number: 0))
        _ = try await feed(Array(repeating: 0xee, count: IncomingPiece.batchSize), to: stale, chunk: 1 << 20)
        try await store.delete(taskID: taskID)
        try await store.open(taskID: taskID, url: "u", contentLength: UInt64(2 * Self.pieceLength), pieceLength: UInt64(Self.pieceLength))
        let fresh = try #require(try await store.receivePiece(taskID: taskID, number: 0))
        _ = try await feed(Self.piece, to: fresh, chunk: 1 << 20)
        _ = try await fresh.commit(expectedDigest: PieceDigest.of(Self.piece))
        // The old writer goes on: none of its bytes may land.
        _ = try? await feed(Array(repeating: 0xee, count: Self.pieceLength - IncomingPiece.batchSize), to: stale, chunk: 1 << 20)
        _ = try? await stale.commit()
        #expect(try await store.readPiece(taskID: taskID, number: 0, verifying: true) == Self.piece)
    }
}
