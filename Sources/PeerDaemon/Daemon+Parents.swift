import DragonflyCommon
import GeneratedAPI
import PeerStorage
import RPCCore
import Synchronization
import VortexProtocol
import VortexTransport

/// Pieces still to fetch, handed out to one worker per parent.
final class PieceQueue: Sendable {
    private let state: Mutex<[PieceLayout.Piece]>
    init(_ pieces: [PieceLayout.Piece]) { state = Mutex(pieces.reversed()) }
    func take() -> PieceLayout.Piece? { state.withLock { $0.popLast() } }
    func giveBack(_ p: PieceLayout.Piece) { state.withLock { $0.append(p) } }
    /// The next piece that `isWanted` accepts, leaving the others in order.
    func take(where isWanted: (PieceLayout.Piece) -> Bool) -> PieceLayout.Piece? {
        state.withLock { pieces in
            guard let i = pieces.lastIndex(where: isWanted) else { return nil }
            return pieces.remove(at: i)
        }
    }
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
        let links = parents.map { VortexParentLink(parentID: $0.id) }
        defer { links.forEach { $0.stop() } }
        return await withTaskGroup(of: (String, UInt32)?.self) { group in
            for (parent, link) in zip(parents, links) {
                for _ in 0..<perParent {
                    group.addTask { await self.parentWorker(plan, parent, link, queue, report: report, onPiece: onPiece) }
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

    /// Returns the parent's id and the piece it failed, if it failed. Our piece stream is
    /// used unless `download.protocol` is `tcp` or the parent does not serve it (a Rust
    /// dfdaemon): then Vortex, at the address the parent gives in SyncPieces.
    private func parentWorker(_ plan: DownloadPlan, _ parent: Common_V2_Peer, _ link: VortexParentLink, _ queue: PieceQueue,
                              report: PieceReport, onPiece: @escaping @Sendable (Common_V2_Piece) async -> Void) async -> (String, UInt32)? {
        guard let host = parent.host else { return (parent.id, 0) }
        let address = host.ip.contains(":") ? "[\(host.ip)]:\(host.port)" : "\(host.ip):\(host.port)"
        if config.downloadProtocol == .tcp {
            return await vortexWorker(plan, parent, address: address, link, queue, report: report, onPiece: onPiece)
        }
        switch await streamWorker(plan, parent, address: address, queue, report: report, onPiece: onPiece) {
        case .done: return nil
        case .failed(let piece): return (parent.id, piece)
        case .noPieceStream:
            plan.log.info("parent \(parent.id) has no piece stream; fetching from it over Vortex")
            return await vortexWorker(plan, parent, address: address, link, queue, report: report, onPiece: onPiece)
        }
    }

    private enum StreamOutcome {
        case done
        case failed(UInt32)
        /// The parent answered UNIMPLEMENTED: not one of ours.
        case noPieceStream
    }

    private func streamWorker(_ plan: DownloadPlan, _ parent: Common_V2_Peer, address: String, _ queue: PieceQueue,
                              report: PieceReport, onPiece: @Sendable (Common_V2_Piece) async -> Void) async -> StreamOutcome {
        let call: RPCCall<Dfswift_Peer_V1_PieceRequest, Dfswift_Peer_V1_PieceResponse>
        do {
            let client = Dfswift_Peer_V1_PieceTransferClient(RPCClient(transport: try channel(address)))
            call = try await client.downloadPieces(options: CallOptions(timeout: .seconds(3600)))
        } catch {
            plan.log.info("cannot reach parent \(parent.id) at \(address): \(error)")
            return .failed(0)
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
                try await keep(plan, piece.number, answer.content, digest: answer.digest, from: parent, transport: "stream",
                               since: start, report: report, onPiece: onPiece)
            } catch {
                queue.giveBack(piece)
                if let rpc = error as? RPCError, rpc.code == .unimplemented { return .noPieceStream }
                plan.log.info("parent \(parent.id) failed piece \(piece.number): \(error)")
                return .failed(piece.number)
            }
        }
        return .done
    }

    /// Stores a piece a parent sent (the store checks the parent's digest against the bytes
    /// before keeping them), counts it, and reports it.
    private func keep(_ plan: DownloadPlan, _ number: UInt32, _ bytes: [UInt8], digest: String, from parent: Common_V2_Peer,
                      transport: String, since start: ContinuousClock.Instant, report: PieceReport,
                      onPiece: @Sendable (Common_V2_Piece) async -> Void) async throws {
        try await downloadLimit.take(bytes.count)
        try await plan.limit.take(bytes.count)
        let stored = try await store.writePiece(taskID: plan.taskID, number: number, bytes: bytes, expectedDigest: digest,
                                                parentID: parent.id)
        recordPiece(source: "peer", bytes: bytes.count, cost: ContinuousClock.now - start)
        recordParentPiece(transport: transport)
        let reported = Common_V2_Piece(stored, traffic: .remotePeer, cost: ContinuousClock.now - start)
        await onPiece(reported)
        try await report(reported)
    }

    private func vortexWorker(_ plan: DownloadPlan, _ parent: Common_V2_Peer, address: String, _ link: VortexParentLink,
                              _ queue: PieceQueue, report: PieceReport,
                              onPiece: @Sendable (Common_V2_Piece) async -> Void) async -> (String, UInt32)? {
        link.start(self, address: address, taskID: plan.taskID)
        let client = VortexClient(maxPiece: 1 << 30)
        while true {
            let next: (PieceLayout.Piece, host: String, port: Int)?
            do {
                next = try await link.next(from: queue, timeout: config.pieceTimeout)
            } catch {
                plan.log.info("parent \(parent.id) cannot serve over Vortex: \(error)")
                return (parent.id, 0)
            }
            guard let (piece, host, port) = next else { return nil }
            let start = ContinuousClock.now
            do {
                let got = try await withTimeout(config.pieceTimeout) {
                    try await client.downloadPiece(host: host, port: port, taskID: plan.taskID, number: piece.number,
                                                   expectedLength: piece.length)
                }
                try await keep(plan, piece.number, got.content, digest: got.metadata.digest, from: parent, transport: "vortex",
                               since: start, report: report, onPiece: onPiece)
            } catch {
                plan.log.info("parent \(parent.id) failed piece \(piece.number) over Vortex: \(error)")
                queue.giveBack(piece)
                return (parent.id, piece.number)
            }
        }
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
