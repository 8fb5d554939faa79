import Foundation
import Testing
import DragonflyCommon
@testable import PeerStorage

/// A store that is killed keeps what reached the disk and serves nothing corrupt: pieces
/// logged after the last sync are read back and kept only when they match their digests.
@Suite struct PieceLogTests {
    func logPath(_ dir: String) -> String { dir + "/metadata/\(taskID).log" }
    func headerPath(_ dir: String) -> String { dir + "/metadata/\(taskID).json" }

    @Test func aPieceCostsOneLogLineNotAMetadataRewrite() async throws {
        let dir = temporaryDirectory()
        let store = try PieceStore(directory: dir)
        try await store.open(taskID: taskID, url: "u", contentLength: 10_240, pieceLength: 4096)
        let header = try Data(contentsOf: URL(fileURLWithPath: headerPath(dir)))
        for n in 0..<2 { try await store.writePiece(taskID: taskID, number: UInt32(n), bytes: pieceBytes(n), parentID: "parent one") }
        #expect(try Data(contentsOf: URL(fileURLWithPath: headerPath(dir))) == header, "the header is not rewritten per piece")
        let lines = try String(contentsOfFile: logPath(dir), encoding: .utf8).split(separator: "\n")
        #expect(lines == ["p 0 \(PieceDigest.of(pieceBytes(0))) peer", "p 1 \(PieceDigest.of(pieceBytes(1))) peer"],
                "one line per piece; a parent id with a space cannot break the line")
        // Finishing writes the header with every piece and drops the log.
        try await store.writePiece(taskID: taskID, number: 2, bytes: pieceBytes(2))
        try await store.finish(taskID: taskID)
        #expect(!FileManager.default.fileExists(atPath: logPath(dir)))
        let again = try PieceStore(directory: dir)
        let m = try await again.metadata(taskID)
        #expect(m.finished && m.pieces.count == 3 && m.pieces[2]?.parentID == nil && m.pieces[0]?.parentID == "parent one")
        #expect(try await again.readPiece(taskID: taskID, number: 2) == pieceBytes(2))
    }

    @Test func afterACrashUnsyncedPiecesAreKeptOnlyIfTheirBytesMatch() async throws {
        let dir = temporaryDirectory()
        do {
            // A sync after every piece's worth of bytes: pieces 0 and 1 are followed by marks.
            let store = try PieceStore(directory: dir, syncEvery: 1)
            try await store.open(taskID: taskID, url: "u", contentLength: 10_240, pieceLength: 4096)
            try await store.writePiece(taskID: taskID, number: 0, bytes: pieceBytes(0))
        }
        // What a crash can leave: a line for piece 1 whose bytes never reached the disk (the
        // content still holds zeros), one for piece 2 whose bytes did, and a torn last line.
        let handle = try #require(FileHandle(forWritingAtPath: logPath(dir)))
        handle.seekToEndOfFile()
        handle.write(Data("p 1 \(PieceDigest.of(pieceBytes(1))) -\np 2 \(PieceDigest.of(pieceBytes(2))) -\np 0 crc32:12".utf8))
        try handle.close()
        let content = try #require(FileHandle(forWritingAtPath: dir + "/content/\(taskID)"))
        content.seek(toFileOffset: 8192)
        content.write(Data(pieceBytes(2)))
        try content.close()

        let restarted = try PieceStore(directory: dir)
        let m = try await restarted.metadata(taskID)
        #expect(m.pieces.keys.sorted() == [0, 2], "piece 1's bytes are zeros: it is fetched again, not served")
        #expect(!m.finished)
        // The task resumes: the missing piece is stored and the task completes.
        try await restarted.writePiece(taskID: taskID, number: 1, bytes: pieceBytes(1))
        try await restarted.finish(taskID: taskID, contentDigest: ContentDigest.compute(.sha256, of: content0()))
    }

    @Test func syncedPiecesAreTrustedWithoutReadingThemBack() async throws {
        let dir = temporaryDirectory()
        do {
            let store = try PieceStore(directory: dir, syncEvery: 1)
            try await store.open(taskID: taskID, url: "u", contentLength: 10_240, pieceLength: 4096)
            try await store.writePiece(taskID: taskID, number: 0, bytes: pieceBytes(0))
        }
        let lines = try String(contentsOfFile: logPath(dir), encoding: .utf8).split(separator: "\n")
        #expect(lines.last == "s", "a sync mark follows the piece once its bytes were flushed")
        // Changed behind the store's back after the sync: still listed (a verifying read or
        // the task's final check catches it), which shows the synced part is not re-read.
        let content = try #require(FileHandle(forWritingAtPath: dir + "/content/\(taskID)"))
        content.write(Data([0xff]))
        try content.close()
        let restarted = try PieceStore(directory: dir)
        #expect(try await restarted.metadata(taskID).pieces.keys.sorted() == [0])
        await #expect(throws: StorageError.self) { try await restarted.readPiece(taskID: taskID, number: 0) }
    }

    func content0() -> [UInt8] { content }
}

/// Readers and writers of the store run at once, from many tasks, without a reader ever
/// seeing bytes that differ from what was stored (the earlier attempt at concurrent piece
/// I/O crashed here), and a deleted task's late writes are refused, not resurrected.
@Suite struct ConcurrentStoreTests {
    @Test func manyReadersAndWritersAtOnceSeeOnlyWholePieces() async throws {
        let store = try PieceStore(directory: temporaryDirectory())
        let pieceLength = 64 * 1024
        let pieces = 24
        func bytes(_ task: Int, _ n: Int) -> [UInt8] { (0..<pieceLength).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ n &* 13 &+ task) } }
        let ids = (0..<4).map { String(repeating: String(format: "%02x", $0 + 1), count: 32) }
        for id in ids {
            try await store.open(taskID: id, url: "u", contentLength: UInt64(pieceLength * pieces), pieceLength: UInt64(pieceLength))
        }
        let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
            for (t, id) in ids.enumerated() {
                // Two writers per task, racing on every piece (the end game's duplicate copies).
                for _ in 0..<2 {
                    group.addTask {
                        for n in (0..<pieces).shuffled() {
                            try await store.writePiece(taskID: id, number: UInt32(n), bytes: bytes(t, n),
                                                       expectedDigest: PieceDigest.of(bytes(t, n)))
                        }
                        return 0
                    }
                }
                // Readers that wait for each piece by notification, then check its bytes.
                for _ in 0..<3 {
                    group.addTask {
                        var bad = 0
                        for n in 0..<pieces {
                            while true {
                                let seen = store.changes.version(id)
                                if try await store.metadata(id).pieces[UInt32(n)] != nil { break }
                                await store.changes.wait(id, after: seen, timeout: .seconds(10))
                            }
                            if try await store.readPiece(taskID: id, number: UInt32(n), verifying: false) != bytes(t, n) { bad += 1 }
                        }
                        return bad
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(mismatches == 0)
        for id in ids {
            try await store.finish(taskID: id)
            #expect(try await store.metadata(id).finished)
        }
    }

    @Test func aWriteThatLosesTheRaceWithDeleteIsRefused() async throws {
        let store = try PieceStore(directory: temporaryDirectory())
        try await store.open(taskID: taskID, url: "u", contentLength: 10_240, pieceLength: 4096)
        try await store.delete(taskID: taskID)
        await #expect(throws: StorageError.self) { try await store.writePiece(taskID: taskID, number: 0, bytes: pieceBytes(0)) }
        await #expect(throws: StorageError.self) { try await store.metadata(taskID) }
    }
}

@Suite struct ChangeSignalTests {
    @Test func aWaiterWakesOnTheChangeNotAtItsTimeout() async {
        let signal = ChangeSignal()
        let seen = signal.version("t")
        let clock = ContinuousClock()
        let waited = await clock.measure {
            async let wake: Void = signal.wait("t", after: seen, timeout: .seconds(30))
            try? await Task.sleep(for: .milliseconds(50))
            signal.signal("t")
            await wake
        }
        #expect(waited < .seconds(10))
        #expect(signal.version("t") == seen + 1)
    }

    @Test func aChangeBeforeTheWaitIsNotMissed() async {
        let signal = ChangeSignal()
        let seen = signal.version("t")
        signal.signal("t")
        let clock = ContinuousClock()
        #expect(await clock.measure { await signal.wait("t", after: seen, timeout: .seconds(30)) } < .seconds(10))
    }

    @Test func otherKeysDoNotWakeAndTheTimeoutEndsTheWait() async {
        let signal = ChangeSignal()
        let seen = signal.version("t")
        signal.signal("other")
        await signal.wait("t", after: seen, timeout: .milliseconds(100))
        #expect(signal.version("t") == seen)
    }

    @Test func cancellingAWaiterWakesIt() async {
        let signal = ChangeSignal()
        let seen = signal.version("t")
        let waiter = Task { await signal.wait("t", after: seen, timeout: .seconds(30)) }
        try? await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        let clock = ContinuousClock()
        #expect(await clock.measure { await waiter.value } < .seconds(10))
    }
}
