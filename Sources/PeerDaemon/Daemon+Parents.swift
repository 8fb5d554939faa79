import DragonflyCommon
import GeneratedAPI
import PeerStorage
import RPCCore
import Synchronization

/// Pieces still to fetch, handed out to one worker per parent.
final class PieceQueue: Sendable {
    private let state: Mutex<[PieceLayout.Piece]>
    init(_ pieces: [PieceLayout.Piece]) { state = Mutex(pieces.reversed()) }
    func take() -> PieceLayout.Piece? { state.withLock { $0.popLast() } }
    func giveBack(_ p: PieceLayout.Piece) { state.withLock { $0.append(p) } }
    var isEmpty: Bool { state.withLock { $0.isEmpty } }
}

extension Daemon {
    /// Fetches what it can from `parents`, one worker and one PieceTransfer stream per
    /// parent. A parent that fails or sends a bad piece is dropped and its piece goes to the
    /// others. Returns the parents that failed.
    func fetchFromParents(_ plan: DownloadPlan, parents: [Common_V2_Peer], report: @escaping PieceReport,
                          onPiece: @escaping @Sendable (Common_V2_Piece) async -> Void,
                          onParentFailed: @escaping @Sendable (String, UInt32) async -> Void) async throws -> [String] {
        let queue = PieceQueue(try await missingPieces(plan))
        // Several streams per parent up to concurrentPieceCount in all; workers take the
        // next piece when free, so a faster (less loaded) parent serves more pieces.
        let perParent = max(1, config.concurrentPieceCount / max(1, parents.count))
        return await withTaskGroup(of: (String, UInt32)?.self) { group in
            for parent in parents {
                for _ in 0..<perParent {
                    group.addTask { await self.parentWorker(plan, parent, queue, report: report, onPiece: onPiece) }
                }
            }
            var failed: [String] = []
            for await case let (parentID, piece)? in group where !failed.contains(parentID) {
                failed.append(parentID)
                await onParentFailed(parentID, piece)
            }
            return failed
        }
    }

    /// Returns the parent's id and the piece it failed, if it failed.
    private func parentWorker(_ plan: DownloadPlan, _ parent: Common_V2_Peer, _ queue: PieceQueue,
                              report: PieceReport, onPiece: @Sendable (Common_V2_Piece) async -> Void) async -> (String, UInt32)? {
        guard let host = parent.host else { return (parent.id, 0) }
        let address = host.ip.contains(":") ? "[\(host.ip)]:\(host.port)" : "\(host.ip):\(host.port)"
        let call: RPCCall<Dfswift_Peer_V1_PieceRequest, Dfswift_Peer_V1_PieceResponse>
        do {
            let client = Dfswift_Peer_V1_PieceTransferClient(RPCClient(transport: try channel(address)))
            call = try await client.downloadPieces(options: CallOptions(timeout: .seconds(3600)))
        } catch {
            plan.log.info("cannot reach parent \(parent.id) at \(address): \(error)")
            return (parent.id, 0)
        }
        defer { call.cancel() }
        // Iterators of an RPCStream share its buffer, so a copy can wait under a timeout.
        let responses = call.responses.makeAsyncIterator()
        while let piece = queue.take() {
            let start = ContinuousClock.now
            do {
                try await call.send(Dfswift_Peer_V1_PieceRequest.with { $0.taskId = plan.taskID; $0.number = piece.number })
                let next: Dfswift_Peer_V1_PieceResponse? = try await withTimeout(config.pieceTimeout) {
                    var it = responses
                    return try await it.next()
                }
                guard let answer = next else {
                    throw RPCError(code: .unavailable, message: "parent ended the stream")
                }
                guard answer.number == piece.number else { throw RPCError(code: .internal, message: "parent sent the wrong piece") }
                // The store checks the parent's digest against the bytes before keeping them.
                try await downloadLimit.take(answer.content.count)
                let stored = try await store.writePiece(taskID: plan.taskID, number: piece.number, bytes: answer.content,
                                                        expectedDigest: answer.digest, parentID: parent.id)
                recordPiece(source: "peer", bytes: answer.content.count, cost: ContinuousClock.now - start)
                let reported = Common_V2_Piece(stored, traffic: .remotePeer, cost: ContinuousClock.now - start)
                await onPiece(reported)
                try await report(reported)
            } catch {
                plan.log.info("parent \(parent.id) failed piece \(piece.number): \(error)")
                queue.giveBack(piece)
                return (parent.id, piece.number)
            }
        }
        return nil
    }
}

struct TimeoutError: Error {}

/// Runs `body`, failing with `TimeoutError` if it takes longer than `limit`.
func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw TimeoutError()
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw TimeoutError() }
        return first
    }
}
