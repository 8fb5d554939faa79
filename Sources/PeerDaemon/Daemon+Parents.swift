import DragonflyCommon
import GeneratedAPI
import PeerStorage
import ProtoCore
import RPCCore
import Synchronization
import VortexProtocol
import VortexTransport

extension Daemon {
    /// Fetches what it can from `parents`: several workers per parent (up to
    /// `download.concurrentPieceCount` in all), each with a pipelined stream, take pieces
    /// from one queue as they are free, so each piece goes to a parent that is free and
    /// fast. A parent that fails or sends a bad piece is dropped and its pieces go to the
    /// others. Returns the parents that failed.
    func fetchFromParents(_ plan: DownloadPlan, parents offered: [Common_V2_Peer], report: @escaping PieceReport,
                          onPiece: @escaping @Sendable (Common_V2_Piece) async -> Void,
                          onParentFailed: @escaping @Sendable (String, UInt32) async -> Void) async throws -> [String] {
        let parents = Self.boundedParents(offered)
        // `download.concurrentPieceCount` counts pieces in flight for the whole download, as
        // upstream means it: shared among the parents, each worker keeping `pipelineDepth`
        // requests out. (Counting workers instead kept twice as many 4 MiB pieces in memory.)
        let inFlightPerParent = max(1, config.concurrentPieceCount / max(1, parents.count))
        let perParent = max(1, inFlightPerParent / Self.pipelineDepth)
        let queue = PieceQueue(try await missingPieces(plan), streamsPerParent: perParent * Self.pipelineDepth)
        let links = parents.map { VortexParentLink(parentID: $0.id, pieceCount: plan.layout.pieceCount, changes: queue.changes) }
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

    /// The most parents one round fetches from. Each gets workers and a connection that is
    /// kept, so what a scheduler's answer lists is bounded before anything is made for it.
    static let maxParentsPerRound = 20

    /// The first `maxParentsPerRound` distinct parents offered.
    static func boundedParents(_ offered: [Common_V2_Peer]) -> [Common_V2_Peer] {
        var seen = Set<String>()
        var parents: [Common_V2_Peer] = []
        for parent in offered where parents.count < maxParentsPerRound && seen.insert(parent.id).inserted {
            parents.append(parent)
        }
        return parents
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

    /// Requests pieces on one PieceTransfer stream, `pipelineDepth` ahead of the answers
    /// (the parent answers in order), so the parent never waits for this peer's next request.
    private func streamWorker(_ plan: DownloadPlan, _ parent: Common_V2_Peer, address: String, _ queue: PieceQueue,
                              report: PieceReport, onPiece: @Sendable (Common_V2_Piece) async -> Void) async -> StreamOutcome {
        let call: RPCCall<Dfswift_Peer_V1_PieceRequest, PieceAnswer>
        do {
            let client = Dfswift_Peer_V1_PieceTransferClient(RPCClient(transport: try channel(address)))
            // Answers are read with their content left in the message's array (`InPlaceBytes`).
            call = RPCCall(handle: try await client.downloadPieces(options: CallOptions(timeout: .seconds(3600))).handle)
        } catch {
            plan.log.info("cannot reach parent \(parent.id) at \(address): \(error)")
            queue.drop(parent.id)
            return .failed(0)
        }
        defer { call.cancel() }
        // Iterators of an RPCStream share its buffer, so a copy can wait under a timeout.
        let responses = call.responses.makeAsyncIterator()
        var asked: [(piece: PieceLayout.Piece, at: ContinuousClock.Instant)] = []
        var lastAnswer = ContinuousClock.now
        func giveBackAll() { for (p, _) in asked { queue.failed(p, by: parent.id) } }
        while true {
            var idleUntil: Duration?
            while asked.count < Self.pipelineDepth {
                let seen = queue.changes.version("")
                switch queue.take(for: parent.id) {
                case .piece(let piece):
                    do {
                        try await call.send(Dfswift_Peer_V1_PieceRequest.with {
                            $0.taskId = plan.taskID
                            $0.number = piece.number
                            $0.maxChunkSize = UInt32(IncomingPiece.batchSize)
                        })
                    } catch {
                        let unimplemented = (error as? RPCError)?.code == .unimplemented
                        if !unimplemented { queue.drop(parent.id) }
                        queue.failed(piece, by: parent.id)
                        giveBackAll()
                        // A parent that answers UNIMPLEMENTED before a later request goes out
                        // (a slow child, or a quick parent) fails the send, not the read.
                        if unimplemented { return .noPieceStream }
                        plan.log.info("parent \(parent.id) refused a request: \(error)")
                        return .failed(piece.number)
                    }
                    asked.append((piece, .now))
                    continue
                case .finished:
                    if asked.isEmpty { return .done }
                case .wait(let wakeAfter):
                    if asked.isEmpty {
                        await queue.changes.wait("", after: seen, timeout: wakeAfter)
                        if Task.isCancelled { return .done }
                        idleUntil = wakeAfter
                    }
                }
                break
            }
            if idleUntil != nil { continue }
            guard let (piece, askedAt) = asked.first else { continue }
            // A piece's time runs from when the parent could start on it: its request's, or
            // the previous answer's, whichever came later.
            let start = max(askedAt, lastAnswer)
            do {
                let received = try await receiveAnswer(plan, piece, from: parent, responses)
                asked.removeFirst()
                lastAnswer = .now
                try await keep(plan, piece, received, from: parent, queue: queue, transport: "stream",
                               since: start, report: report, onPiece: onPiece)
            } catch {
                let unimplemented = (error as? RPCError)?.code == .unimplemented
                if !unimplemented { queue.drop(parent.id) }
                // The piece that failed (it may have left `asked` already) and all behind it.
                if !asked.contains(where: { $0.piece.number == piece.number }) { queue.failed(piece, by: parent.id) }
                giveBackAll()
                if unimplemented { return .noPieceStream }
                plan.log.info("parent \(parent.id) failed piece \(piece.number): \(error)")
                return .failed(piece.number)
            }
        }
    }

    /// Requests in flight on one piece stream: one being answered, one queued behind it.
    static let pipelineDepth = 2

    /// A piece as it came from a parent: whole in one message (a parent that does not send
    /// in chunks, or a piece that fits one), or already stored as it arrived.
    fileprivate enum Received {
        case whole(ArraySlice<UInt8>, digest: String)
        /// Nil when a copy from elsewhere was here before this one began.
        case stored(TaskMetadata.Piece?)
    }

    /// Reads the answer to one request: one response with the whole piece, or its chunks in
    /// order, each stored as it arrives (under the download limits) and the piece checked
    /// against the parent's digest at the end.
    private func receiveAnswer(_ plan: DownloadPlan, _ piece: PieceLayout.Piece, from parent: Common_V2_Peer,
                               _ responses: RPCStream<PieceAnswer>.AsyncIterator) async throws -> Received {
        var incoming: IncomingPiece?
        var digest = ""
        var received: UInt64 = 0
        while true {
            let next: PieceAnswer? = try await withTimeout(config.pieceTimeout) {
                var it = responses
                return try await it.next()
            }
            guard let next else { throw RPCError(code: .unavailable, message: "parent ended the stream") }
            let (answer, content) = (next.message, next.bytes)
            guard answer.number == piece.number else { throw RPCError(code: .internal, message: "parent sent the wrong piece") }
            if received == 0, answer.contentOffset == 0, UInt64(content.count) == piece.length {
                return .whole(content, digest: answer.digest)
            }
            guard answer.length == piece.length, answer.contentOffset == received, !content.isEmpty,
                  UInt64(content.count) <= piece.length - received else {
                throw RPCError(code: .internal, message: "parent sent \(content.count) bytes at \(answer.contentOffset) of piece \(piece.number) (\(piece.length) bytes, \(received) received)")
            }
            if received == 0 {
                digest = answer.digest
                incoming = try await store.receivePiece(taskID: plan.taskID, number: piece.number)
            } else if answer.digest != digest {
                throw RPCError(code: .internal, message: "parent changed the digest of piece \(piece.number) midway")
            }
            try await downloadLimit.take(content.count)
            try await plan.limit.take(content.count)
            try await incoming?.append(content)
            received += UInt64(content.count)
            if received == piece.length {
                guard let incoming else { return .stored(nil) }
                return .stored(try await incoming.commit(expectedDigest: digest, parentID: parent.id))
            }
        }
    }

    /// Stores a piece a parent sent whole (the store checks the parent's digest against the
    /// bytes before keeping them), or takes one stored as it arrived; counts it and reports
    /// it, unless another parent's copy of it arrived first.
    private func keep(_ plan: DownloadPlan, _ piece: PieceLayout.Piece, _ received: Received, from parent: Common_V2_Peer,
                      queue: PieceQueue, transport: String, since start: ContinuousClock.Instant, report: PieceReport,
                      onPiece: @Sendable (Common_V2_Piece) async -> Void) async throws {
        let stored: TaskMetadata.Piece
        switch received {
        case .whole(let bytes, let digest):
            if queue.isDone(piece.number) {
                // The end game's losing copy: already here, nothing to store or report.
                queue.completed(piece, by: parent.id, elapsed: ContinuousClock.now - start)
                return
            }
            try await downloadLimit.take(bytes.count)
            try await plan.limit.take(bytes.count)
            stored = try await store.writePiece(taskID: plan.taskID, number: piece.number, bytes: bytes, expectedDigest: digest,
                                                parentID: parent.id)
        case .stored(nil):
            queue.completed(piece, by: parent.id, elapsed: ContinuousClock.now - start)
            return
        case .stored(let piece?):
            stored = piece
        }
        guard queue.completed(piece, by: parent.id, elapsed: ContinuousClock.now - start) else { return }
        recordPiece(source: "peer", bytes: Int(clamping: stored.length), cost: ContinuousClock.now - start, task: plan.taskID)
        recordParentPiece(transport: transport)
        let reported = Common_V2_Piece(stored, traffic: .remotePeer, cost: ContinuousClock.now - start)
        await onPiece(reported)
        try await report(reported)
    }

    private func vortexWorker(_ plan: DownloadPlan, _ parent: Common_V2_Peer, address: String, _ link: VortexParentLink,
                              _ queue: PieceQueue, report: PieceReport,
                              onPiece: @Sendable (Common_V2_Piece) async -> Void) async -> (String, UInt32)? {
        link.start(self, address: address, taskID: plan.taskID, kind: plan.kind)
        let client = VortexClient(maxPiece: 1 << 30)
        while true {
            let next: (PieceLayout.Piece, host: String, port: Int)?
            do {
                next = try await link.next(from: queue, timeout: config.pieceTimeout)
            } catch {
                plan.log.info("parent \(parent.id) cannot serve over Vortex: \(error)")
                queue.drop(parent.id)
                return (parent.id, 0)
            }
            guard let (piece, host, port) = next else { return nil }
            let start = ContinuousClock.now
            do {
                let received = try await withTimeout(config.pieceTimeout) {
                    try await self.receiveOverVortex(client, plan, piece, host: host, port: port, from: parent)
                }
                try await keep(plan, piece, received, from: parent, queue: queue, transport: "vortex",
                               since: start, report: report, onPiece: onPiece)
            } catch {
                plan.log.info("parent \(parent.id) failed piece \(piece.number) over Vortex: \(error)")
                queue.drop(parent.id)
                queue.failed(piece, by: parent.id)
                return (parent.id, piece.number)
            }
        }
    }
}

extension Daemon {
    /// Fetches one piece over Vortex, storing its content as it is read from the socket and
    /// checking it against the parent's digest at the end.
    fileprivate func receiveOverVortex(_ client: VortexClient, _ plan: DownloadPlan, _ piece: PieceLayout.Piece,
                                       host: String, port: Int, from parent: Common_V2_Peer) async throws -> Received {
        var incoming: IncomingPiece?
        var started = false
        let metadata = try await client.downloadPiece(host: host, port: port, taskID: plan.taskID, number: piece.number,
                                                      kind: plan.kind, expectedLength: piece.length) { _, chunk in
            if !started {
                started = true
                incoming = try await store.receivePiece(taskID: plan.taskID, number: piece.number)
            }
            try await downloadLimit.take(chunk.readableBytes)
            try await plan.limit.take(chunk.readableBytes)
            try await incoming?.append(chunk)
        }
        if !started { incoming = try await store.receivePiece(taskID: plan.taskID, number: piece.number) }
        guard let incoming else { return .stored(nil) }
        return .stored(try await incoming.commit(expectedDigest: metadata.digest, parentID: parent.id))
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
