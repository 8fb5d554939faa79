import Foundation
import Testing
import DragonflyCommon
@testable import PeerStorage

/// The store under the load a serving dfdaemon puts on it (ConcurrentStoreTests has the
/// racing writers): what concurrent writes merged into the metadata is all on disk for a
/// restarted store, readers see only what is recorded, and a delete in the middle of
/// reads refuses them rather than handing out other bytes.
@Suite(.timeLimit(.minutes(1))) struct StoreUnderLoadTests {
    static let pieceLength = 4096
    static let pieceCount = 64

    static func bytes(of piece: Int) -> [UInt8] {
        (0..<pieceLength).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ piece &* 13) }
    }

    @Test func concurrentWritersAndReadersLoseNothingAndReadNothingHalfWritten() async throws {
        let dir = temporaryDirectory()
        let store = try PieceStore(directory: dir)
        let count = Self.pieceCount, length = Self.pieceLength
        try await store.open(taskID: taskID, url: "u", contentLength: UInt64(count * length), pieceLength: UInt64(length))
        let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
            // Four writers, each a quarter of the pieces, interleaved.
            for writer in 0..<4 {
                group.addTask {
                    for n in stride(from: writer, to: count, by: 4) {
                        _ = try await store.writePiece(taskID: taskID, number: UInt32(n), bytes: Self.bytes(of: n),
                                                       expectedDigest: PieceDigest.of(Self.bytes(of: n)))
                    }
                    return 0
                }
            }
            // Four readers, reading whatever the metadata says is there until all of it is.
            for _ in 0..<4 {
                group.addTask {
                    var wrong = 0
                    while true {
                        let here = try await store.metadata(taskID).pieces
                        for (n, _) in here {
                            let read = try await store.readPiece(taskID: taskID, number: n, verifying: true)
                            if read != Self.bytes(of: Int(n)) { wrong += 1 }
                        }
                        if here.count == count { return wrong }
                        await Task.yield()
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(mismatches == 0)
        #expect(try await store.metadata(taskID).pieces.count == count)
        // What was merged in memory was also recorded: a store opened afresh has all of it.
        let reopened = try PieceStore(directory: dir)
        #expect(try await reopened.metadata(taskID).pieces.count == count)
        for n in [0, 17, count - 1] {
            #expect(try await reopened.readPiece(taskID: taskID, number: UInt32(n)) == Self.bytes(of: n))
        }
    }

    @Test func aDeleteWhileReadersWorkEndsTheirReadsWithAnErrorNotACrash() async throws {
        let store = try PieceStore(directory: temporaryDirectory())
        try await store.open(taskID: taskID, url: "u", contentLength: UInt64(8 * Self.pieceLength), pieceLength: UInt64(Self.pieceLength))
        for n in 0..<8 { _ = try await store.writePiece(taskID: taskID, number: UInt32(n), bytes: Self.bytes(of: n)) }
        let results = await withTaskGroup(of: (ok: Int, refused: Int, wrong: Int).self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var ok = 0, refused = 0, wrong = 0
                    for round in 0..<200 {
                        do {
                            let read = try await store.readPiece(taskID: taskID, number: UInt32(round % 8), verifying: false)
                            if read == Self.bytes(of: round % 8) { ok += 1 } else { wrong += 1 }
                        } catch {
                            refused += 1
                        }
                    }
                    return (ok, refused, wrong)
                }
            }
            group.addTask {
                try? await store.delete(taskID: taskID)
                return (0, 0, 0)
            }
            return await group.reduce(into: (ok: 0, refused: 0, wrong: 0)) {
                $0.ok += $1.ok; $0.refused += $1.refused; $0.wrong += $1.wrong
            }
        }
        // Each read either got the piece or was refused; none got other bytes.
        #expect(results.wrong == 0)
        #expect(results.ok + results.refused == 800)
        // Once deleted, the task is gone for good.
        await #expect(throws: StorageError.self) { try await store.readPiece(taskID: taskID, number: 0) }
    }
}
