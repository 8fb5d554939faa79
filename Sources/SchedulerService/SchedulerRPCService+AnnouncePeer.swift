import GeneratedAPI
import RPCCore
import SchedulerCore

extension SchedulerRPCService {
    /// The peer's conversation with the scheduler: register, then progress reports, until
    /// it finishes, fails, or the stream ends.
    public func announcePeer(_ requests: RPCStream<Scheduler_V2_AnnouncePeerRequest>,
                             responses: RPCWriter<Scheduler_V2_AnnouncePeerResponse>,
                             context: RPCServerContext) async throws {
        metrics.announcePeer.increment()
        metrics.concurrentSchedule.increment()
        var registeredPeer: String?
        defer { metrics.concurrentSchedule.decrement() }
        do {
            for try await request in requests {
                if try await handle(request, responses, registered: &registeredPeer) == .endStream { break }
            }
            if let id = registeredPeer { await engine.detachStream(peerID: id) }
        } catch {
            metrics.announcePeerFailure.increment()
            if let id = registeredPeer {
                await engine.peerStreamFailed(peerID: id)
                await engine.detachStream(peerID: id)
            }
            throw error
        }
    }

    enum Continuation { case keepReading, endStream }

    /// `registered` is set once this stream's registration was accepted: only then does a
    /// failing stream fail the peer. A refused registration naming another stream's peer id
    /// must not take that peer down.
    func handle(_ request: Scheduler_V2_AnnouncePeerRequest,
                _ responses: RPCWriter<Scheduler_V2_AnnouncePeerResponse>,
                registered: inout String?) async throws -> Continuation {
        let peerID = request.peerId
        guard !peerID.isEmpty else { throw RPCError(code: .invalidArgument, message: "peer_id is required") }
        switch request.request {
        case .registerPeerRequest(let register)?:
            guard let download = register.download else {
                throw RPCError(code: .invalidArgument, message: "register_peer_request.download is required")
            }
            let start = ContinuousClock.now
            let outcome = try await engine.registerPeer(hostID: request.hostId, taskID: request.taskId, peerID: peerID,
                                                        download: download, stream: responses)
            registered = peerID
            switch outcome {
            case .emptyTask:
                var r = Scheduler_V2_AnnouncePeerResponse()
                r.response = .emptyTaskResponse(Scheduler_V2_EmptyTaskResponse())
                try await responses.write(r)
            case .schedule:
                try await scheduleNow(peerID)
            }
            metrics.registerDuration.record((ContinuousClock.now - start).seconds)
        case .downloadPeerStartedRequest?:
            try await engine.downloadStarted(peerID: peerID)
        case .downloadPeerBackToSourceStartedRequest?:
            try await engine.backToSourceStarted(peerID: peerID)
        case .reschedulePeerRequest(let r)?:
            try await engine.reschedule(peerID: peerID, excluding: r.candidateParents.map(\.id))
            try await scheduleNow(peerID)
        case .downloadPeerFinishedRequest?:
            try await engine.downloadFinished(peerID: peerID, backToSource: false)
            return .endStream
        case .downloadPeerBackToSourceFinishedRequest?:
            try await engine.downloadFinished(peerID: peerID, backToSource: true)
            return .endStream
        case .downloadPeerFailedRequest?:
            try await engine.downloadFailed(peerID: peerID, backToSource: false)
            return .endStream
        case .downloadPeerBackToSourceFailedRequest?:
            try await engine.downloadFailed(peerID: peerID, backToSource: true)
            return .endStream
        case .downloadPieceFinishedRequest(let r)?:
            // Piece reports never end the stream: a bad one is logged and skipped.
            if let piece = r.piece { try? await engine.pieceFinished(peerID: peerID, piece: piece, backToSource: false) }
        case .downloadPieceBackToSourceFinishedRequest(let r)?:
            if let piece = r.piece { try? await engine.pieceFinished(peerID: peerID, piece: piece, backToSource: true) }
        case .downloadPieceFailedRequest(let r)?:
            let reschedule = (try? await engine.pieceFailed(peerID: peerID, parentID: r.parentId, temporary: r.temporary,
                                                            backToSource: false)) ?? false
            if reschedule { try await scheduleNow(peerID) }
        case .downloadPieceBackToSourceFailedRequest?:
            _ = try? await engine.pieceFailed(peerID: peerID, parentID: nil, temporary: false, backToSource: true)
        case nil:
            throw RPCError(code: .failedPrecondition, message: "receive unknown request")
        }
        return .keepReading
    }

    func scheduleNow(_ peerID: String) async throws {
        let start = ContinuousClock.now
        do {
            try await scheduling.scheduleCandidateParents(peerID: peerID)
        } catch let error as RPCError {
            throw RPCError(code: .failedPrecondition, message: error.message)
        }
        metrics.scheduleDuration.record((ContinuousClock.now - start).seconds)
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
