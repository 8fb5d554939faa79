import Foundation
import Testing
import DragonflyCommon
@testable import PeerStorage

func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "piecestore-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

let taskID = String(repeating: "ab", count: 32)

/// 10 KiB of varied bytes cut into 4 KiB pieces: two full pieces and a 2 KiB tail.
let content: [UInt8] = (0..<10_240).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
func pieceBytes(_ n: Int) -> [UInt8] { Array(content[(n * 4096)..<min(content.count, (n + 1) * 4096)]) }

@Suite struct PieceStoreTests {
    @Test func cachedFilesAreReadableOnlyByTheDaemonsUser() async throws {
        let dir = temporaryDirectory() + "/new-data-dir"
        let store = try PieceStore(directory: dir)
        try await store.open(taskID: taskID, url: "http://o/f", contentLength: 10_240, pieceLength: 4096)
        _ = try await store.writePiece(taskID: taskID, number: 0, bytes: pieceBytes(0))
        func mode(_ path: String) throws -> Int {
            try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) & 0o777
        }
        #expect(try mode(dir) == 0o700)
        #expect(try mode(dir + "/content") == 0o700)
        #expect(try mode(dir + "/metadata") == 0o700)
        #expect(try mode(dir + "/content/" + taskID) == 0o600)
        #expect(try mode(dir + "/metadata/\(taskID).json") == 0o600)
    }

    @Test(arguments: ["../../etc/passwd", "ABCDEF", "a/b", "", String(repeating: "a", count: 200), "ab\u{0}cd"])
    func taskIDsThatAreNotOurHexIDsNeverBecomePaths(_ bad: String) async throws {
        let store = try PieceStore(directory: temporaryDirectory())
        await #expect(throws: StorageError.self) {
            try await store.open(taskID: bad, url: "http://o/f", contentLength: 1, pieceLength: 1)
        }
    }

    @Test func piecesRoundTripAndCompleteTheTask() async throws {
        let store = try PieceStore(directory: temporaryDirectory())
        try await store.open(taskID: taskID, url: "http://o/f", contentLength: 10_240, pieceLength: 4096)
        for n in [2, 0, 1] {
            let piece = try await store.writePiece(taskID: taskID, number: UInt32(n), bytes: pieceBytes(n))
            #expect(piece.digest == PieceDigest.of(pieceBytes(n)))
        }
        for n in 0..<3 { #expect(try await store.readPiece(taskID: taskID, number: UInt32(n)) == pieceBytes(n)) }
        try await store.finish(taskID: taskID, contentDigest: ContentDigest.compute(.sha256, of: content))
        #expect(try await store.metadata(taskID).finished)
    }

    @Test func aPieceWhoseDigestDisagreesIsNotKept() async throws {
        let store = try PieceStore(directory: temporaryDirectory())
        try await store.open(taskID: taskID, url: "u", contentLength: 10_240, pieceLength: 4096)
        var corrupt = pieceBytes(0)
        corrupt[17] ^= 0xff
        await #expect(throws: StorageError.self) {
            try await store.writePiece(taskID: taskID, number: 0, bytes: corrupt, expectedDigest: PieceDigest.of(pieceBytes(0)))
        }
        #expect(try await store.metadata(taskID).pieces.isEmpty)
        await #expect(throws: StorageError.unknownPiece(task: taskID, number: 0)) {
            try await store.readPiece(taskID: taskID, number: 0)
        }
    }

    @Test func wrongLengthAndOutOfRangePiecesAreRefused() async throws {
        let store = try PieceStore(directory: temporaryDirectory())
        try await store.open(taskID: taskID, url: "u", contentLength: 10_240, pieceLength: 4096)
        await #expect(throws: StorageError.wrongLength(piece: 2, expected: 2048, got: 4096)) {
            try await store.writePiece(taskID: taskID, number: 2, bytes: pieceBytes(0))
        }
        await #expect(throws: StorageError.unknownPiece(task: taskID, number: 3)) {
            try await store.writePiece(taskID: taskID, number: 3, bytes: [1])
        }
    }

    @Test func bytesCorruptedOnDiskFailAVerifyingReadAndAreSentUncheckedOtherwise() async throws {
        let dir = temporaryDirectory()
        let store = try PieceStore(directory: dir)
        try await store.open(taskID: taskID, url: "u", contentLength: 10_240, pieceLength: 4096)
        try await store.writePiece(taskID: taskID, number: 1, bytes: pieceBytes(1))
        let handle = try #require(FileHandle(forWritingAtPath: dir + "/content/" + taskID))
        try handle.seek(toOffset: 4096 + 100)
        handle.write(Data([0x00, 0x01, 0x02]))
        try handle.close()
        await #expect(throws: StorageError.self) { try await store.readPiece(taskID: taskID, number: 1) }
        // A read for an upload is not hashed again: the child checks the bytes against the
        // recorded digest that travels with them, and refuses these.
        let sent = try await store.readPiece(taskID: taskID, number: 1, verifying: false)
        #expect(sent.count == 4096 && sent != pieceBytes(1))
        #expect(PieceDigest.of(sent) != (try await store.metadata(taskID).pieces[1]?.digest))
    }

    @Test func wholeContentDigestMismatchKeepsTheTaskUnfinished() async throws {
        let store = try PieceStore(directory: temporaryDirectory())
        try await store.open(taskID: taskID, url: "u", contentLength: 10_240, pieceLength: 4096)
        for n in 0..<3 { try await store.writePiece(taskID: taskID, number: UInt32(n), bytes: pieceBytes(n)) }
        let wrong = ContentDigest(algorithm: .sha256, encoded: String(repeating: "0", count: 64))
        await #expect(throws: StorageError.self) { try await store.finish(taskID: taskID, contentDigest: wrong) }
        #expect(try await store.metadata(taskID).finished == false)
        try await store.finish(taskID: taskID, contentDigest: ContentDigest.compute(.crc32, of: content))
    }

    @Test func aRestartedStoreKnowsItsPieces() async throws {
        let dir = temporaryDirectory()
        do {
            let store = try PieceStore(directory: dir)
            try await store.open(taskID: taskID, url: "u", contentLength: 10_240, pieceLength: 4096)
            try await store.writePiece(taskID: taskID, number: 0, bytes: pieceBytes(0))
        }
        let again = try PieceStore(directory: dir)
        #expect(try await again.metadata(taskID).pieces.keys.sorted() == [0])
        #expect(try await again.readPiece(taskID: taskID, number: 0) == pieceBytes(0))
        // Reopening with the same layout keeps what is there.
        let m = try await again.open(taskID: taskID, url: "u", contentLength: 10_240, pieceLength: 4096)
        #expect(m.pieces.count == 1)
    }

    @Test func idsThatAreNotHexAreRejectedBeforeTouchingTheDisk() async throws {
        let store = try PieceStore(directory: temporaryDirectory())
        await #expect(throws: StorageError.self) {
            try await store.open(taskID: "../../etc/passwd", url: "u", contentLength: 1, pieceLength: 1)
        }
    }

    @Test func staleTasksAreCollected() async throws {
        let store = try PieceStore(directory: temporaryDirectory())
        try await store.open(taskID: taskID, url: "u", contentLength: 10, pieceLength: 4096)
        #expect(await store.collect(olderThan: 3600).isEmpty)
        #expect(await store.collect(olderThan: 3600, now: Date().addingTimeInterval(7200)) == [taskID])
        await #expect(throws: StorageError.self) { try await store.metadata(taskID) }
    }

    @Test func aFullDiskIsAClearErrorAndLosesNothing() async throws {
        // A tiny tmpfs would need root and mount; /dev/full gives ENOSPC on every write. It is
        // on every Linux system, so its absence fails the test rather than skipping it.
        guard FileManager.default.fileExists(atPath: "/dev/full") else {
            Issue.record("/dev/full is missing: the full-disk case cannot be run")
            return
        }
        let dir = temporaryDirectory()
        let store = try PieceStore(directory: dir)
        try await store.open(taskID: taskID, url: "u", contentLength: 10_240, pieceLength: 4096)
        try FileManager.default.removeItem(atPath: dir + "/content/" + taskID)
        try FileManager.default.createSymbolicLink(atPath: dir + "/content/" + taskID, withDestinationPath: "/dev/full")
        do {
            try await store.writePiece(taskID: taskID, number: 0, bytes: pieceBytes(0))
            Issue.record("write to a full disk succeeded")
        } catch let e as StorageError {
            #expect(e == .noSpace("writing 4096 bytes of \(taskID)"))
        }
        #expect(try await store.metadata(taskID).pieces.isEmpty)
    }
}

@Suite struct EvictionTests {
    func finishedTask(_ store: PieceStore, _ id: String) async throws {
        try await store.open(taskID: id, url: "u", contentLength: 10_240, pieceLength: 4096)
        for n in 0..<3 { try await store.writePiece(taskID: id, number: UInt32(n), bytes: pieceBytes(n)) }
        try await store.finish(taskID: id)
    }

    @Test func leastRecentlyUsedFinishedTasksGoFirst() async throws {
        let store = try PieceStore(directory: temporaryDirectory())
        let ids = ["aa", "bb", "cc"].map { String(repeating: $0, count: 32) }
        for id in ids { try await finishedTask(store, id) }
        // Reading the first makes it the most recently used.
        _ = try await store.readPiece(taskID: ids[0], number: 0)
        let partial = String(repeating: "dd", count: 32)
        try await store.open(taskID: partial, url: "u", contentLength: 10_240, pieceLength: 4096)
        try await store.writePiece(taskID: partial, number: 0, bytes: pieceBytes(0))
        #expect(await store.storedBytes() == 3 * 10_240 + 4096)

        let removed = await store.collect(toAtMost: 2 * 10_240)
        #expect(removed == [ids[1], ids[2]])
        #expect(await store.storedBytes() <= 2 * 10_240)
        #expect(try await store.readPiece(taskID: ids[0], number: 0) == pieceBytes(0))
        #expect(try await store.metadata(partial).pieces.count == 1, "a task being fetched is never evicted")
    }

    @Test func fileSystemUsageIsReadable() throws {
        let store = try PieceStore(directory: temporaryDirectory())
        let usage = try #require(store.fileSystemUsage())
        #expect(usage.usedPercent >= 0 && usage.usedPercent <= 100)
        #expect(usage.totalBytes > 0)
    }
}
