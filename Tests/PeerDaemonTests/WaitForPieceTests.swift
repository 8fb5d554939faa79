import DragonflyCommon
import Foundation
import PeerConfig
import PeerStorage
import Testing
@testable import PeerDaemon

/// How a parent answers a child's request for a piece it may not have yet: wait while its
/// own fetch of the task runs (woken when the piece lands, not at a poll or the timeout),
/// and say "not here" at once when waiting cannot help.
@Suite(.timeLimit(.minutes(1))) struct WaitForPieceTests {
    let taskID = String(repeating: "cd", count: 32)
    let piece: [UInt8] = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 5) }

    /// A daemon over a fresh store holding a task of two 4 KiB pieces, none of them yet.
    func daemonWithEmptyTask(pieceTimeout: Duration = .seconds(30)) async throws -> Daemon {
        let dir = NSTemporaryDirectory() + "wait-for-piece-\(UUID().uuidString)"
        let store = try PieceStore(directory: dir)
        try await store.open(taskID: taskID, url: "http://o/f", contentLength: 8192, pieceLength: 4096)
        var config = DaemonConfig()
        config.dataDir = dir
        config.pieceTimeout = pieceTimeout
        return Daemon(config: config, store: store, metrics: MetricsRegistry(prefix: "test_"))
    }

    /// The piece as a parent serves it: waited for, then read through its file.
    func waitForPiece(_ daemon: Daemon, taskID: String, number: UInt32) async throws -> (TaskMetadata.Piece, [UInt8]) {
        let (stored, file) = try await daemon.waitForPieceFile(taskID: taskID, number: number)
        defer { try? file.close() }
        let bytes = try await daemon.store.read(file, offset: stored.offset, length: stored.length, after: [])
        return (stored, Array(bytes.readableBytesView))
    }

    /// Marks the task as being fetched here, as a running download does.
    func markFetching(_ daemon: Daemon) {
        daemon.inflight.withLock { $0[taskID] = FetchJob(wanted: nil, keepWithoutWaiters: true) }
    }

    @Test func aPieceThatLandsDuringAFetchWakesTheWaiter() async throws {
        let daemon = try await daemonWithEmptyTask()
        markFetching(daemon)
        let clock = ContinuousClock()
        let start = clock.now
        let waiter = Task { [self] in try await waitForPiece(daemon, taskID: taskID, number: 1) }
        // The piece is written only once the waiter sleeps on the task: what is tested is
        // the wake-up, not a piece that was already there.
        let deadline = clock.now + .seconds(20)
        while daemon.store.changes.waiterCount(taskID) == 0 && clock.now < deadline { await Task.yield() }
        #expect(daemon.store.changes.waiterCount(taskID) == 1, "the request never waited")
        _ = try await daemon.store.writePiece(taskID: taskID, number: 1, bytes: piece)
        let (stored, bytes) = try await waiter.value
        #expect(stored.number == 1 && bytes == piece)
        // Far sooner than the 30 s piece timeout it would have reached without the wake-up.
        #expect(clock.now - start < .seconds(20))
    }

    @Test func aMissingPieceWithNoFetchRunningIsNotWaitedFor() async throws {
        let daemon = try await daemonWithEmptyTask()
        let clock = ContinuousClock()
        let start = clock.now
        await #expect(throws: PieceWaitError.self) { try await waitForPiece(daemon, taskID: taskID, number: 0) }
        #expect(clock.now - start < .seconds(20), "it waited for a piece no one is fetching")
    }

    @Test func anUnknownTaskOrAPiecePastTheEndIsRefusedAtOnce() async throws {
        let daemon = try await daemonWithEmptyTask()
        markFetching(daemon)
        await #expect(throws: PieceWaitError.self) {
            try await waitForPiece(daemon, taskID: String(repeating: "ef", count: 32), number: 0)
        }
        await #expect(throws: PieceWaitError.self) { try await waitForPiece(daemon, taskID: taskID, number: 2) }
        await #expect(throws: PieceWaitError.self) { try await waitForPiece(daemon, taskID: taskID, number: UInt32.max) }
    }

    @Test func aFetchThatEndsWithoutThePieceEndsTheWait() async throws {
        let daemon = try await daemonWithEmptyTask()
        markFetching(daemon)
        let waiter = Task { [self] in try await waitForPiece(daemon, taskID: taskID, number: 0) }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        while daemon.store.changes.waiterCount(taskID) == 0 && clock.now < deadline { await Task.yield() }
        // The fetch stops (a failed download) and says so, as FetchJob's end does.
        daemon.inflight.withLock { $0[taskID] = nil }
        daemon.store.changes.signal(taskID)
        await #expect(throws: PieceWaitError.self) { try await waiter.value }
    }

    @Test func aPieceAlreadyHereIsServedWithoutWaiting() async throws {
        let daemon = try await daemonWithEmptyTask()
        _ = try await daemon.store.writePiece(taskID: taskID, number: 0, bytes: piece)
        let (stored, bytes) = try await waitForPiece(daemon, taskID: taskID, number: 0)
        #expect(stored.number == 0 && bytes == piece)
        #expect(daemon.uploadCounts.of(taskID) == (uploading: 0, uploaded: 1))
    }
}
