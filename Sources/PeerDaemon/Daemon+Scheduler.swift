import DragonflyCommon
import GeneratedAPI
import PeerStorage
import RPCCore

extension Daemon {
    /// The download as the scheduler directs it: register, then follow its answers —
    /// parents to fetch from, or back to source — reporting every piece.
    func downloadThroughScheduler(_ plan: DownloadPlan, scheduler address: String, report: @escaping PieceReport) async throws {
        let client = Scheduler_V2_SchedulerClient(RPCClient(transport: try channel(address)))
        let call = try await client.announcePeer(options: CallOptions(timeout: .seconds(3600)))
        defer { call.cancel() }
        let session = AnnounceSession(call: call, hostID: hostID, taskID: plan.taskID, peerID: plan.peerID)
        var download = plan.download
        download.actualContentLength = plan.layout.contentLength
        download.actualPieceLength = plan.layout.pieceLength
        download.actualPieceCount = UInt64(plan.layout.pieceCount)
        download.outputPath = nil
        try await session.send(.registerPeerRequest(Scheduler_V2_RegisterPeerRequest.with { $0.download = download }))

        var started = false
        for try await response in call.responses {
            switch response.response {
            case .emptyTaskResponse?:
                try await session.send(.downloadPeerFinishedRequest(Scheduler_V2_DownloadPeerFinishedRequest()))
                try await call.finishSending()
                return
            case .needBackToSourceResponse?:
                try await session.send(.downloadPeerBackToSourceStartedRequest(Scheduler_V2_DownloadPeerBackToSourceStartedRequest()))
                do {
                    try await fetchFromOrigin(plan, pieces: missingPieces(plan), report: report) { piece in
                        try? await session.send(.downloadPieceBackToSourceFinishedRequest(
                            Scheduler_V2_DownloadPieceBackToSourceFinishedRequest.with { $0.piece = piece }))
                    }
                } catch {
                    try? await session.send(.downloadPeerBackToSourceFailedRequest(
                        Scheduler_V2_DownloadPeerBackToSourceFailedRequest.with { $0.descriptionField = "\(error)" }))
                    throw error
                }
                try await session.send(.downloadPeerBackToSourceFinishedRequest(Scheduler_V2_DownloadPeerBackToSourceFinishedRequest()))
                try await call.finishSending()
                return
            case .normalTaskResponse(let normal)?:
                if !started {
                    started = true
                    try await session.send(.downloadPeerStartedRequest(Scheduler_V2_DownloadPeerStartedRequest()))
                }
                let failed = try await fetchFromParents(plan, parents: normal.candidateParents, report: report) { piece in
                    try? await session.send(.downloadPieceFinishedRequest(
                        Scheduler_V2_DownloadPieceFinishedRequest.with { $0.piece = piece }))
                }
                if try await missingPieces(plan).isEmpty {
                    try await session.send(.downloadPeerFinishedRequest(Scheduler_V2_DownloadPeerFinishedRequest()))
                    try await call.finishSending()
                    return
                }
                // Ask for other parents, excluding the ones that failed us.
                var reschedule = Scheduler_V2_ReschedulePeerRequest()
                reschedule.candidateParents = normal.candidateParents.filter { failed.contains($0.id) }
                reschedule.descriptionField = "parents failed: \(failed.joined(separator: ","))"
                try await session.send(.reschedulePeerRequest(reschedule))
            default:
                continue
            }
        }
        throw RPCError(code: .unavailable, message: "scheduler ended the stream before the download finished")
    }
}

/// Sends AnnouncePeer requests with this download's ids filled in.
struct AnnounceSession: Sendable {
    let call: RPCCall<Scheduler_V2_AnnouncePeerRequest, Scheduler_V2_AnnouncePeerResponse>
    let hostID: String
    let taskID: String
    let peerID: String

    func send(_ request: Scheduler_V2_AnnouncePeerRequest.RequestOneof) async throws {
        var r = Scheduler_V2_AnnouncePeerRequest()
        r.hostId = hostID
        r.taskId = taskID
        r.peerId = peerID
        r.request = request
        try await call.send(r)
    }
}
