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
        // The scheduler shows tasks to any client and hands them to seed peers: a login
        // stays here. A seed that needs one fails, and this peer fetches from the origin.
        download.requestHeader = plan.headers.filter { !LogRedaction.isCredentialName($0.key) }
        // The scheduler learns which bytes this peer will hold: a peer with a range is not
        // offered as a parent of the whole task.
        download.range = plan.range.map { r in Common_V2_Range.with { $0.start = r.first; $0.length = r.count } }
        try await session.send(.registerPeerRequest(Scheduler_V2_RegisterPeerRequest.with { $0.download = download }))

        var follower = ScheduleFollower(disableBackToSource: plan.download.disableBackToSource)
        for try await response in call.responses {
            switch follower.step(on: response.response) {
            case .ignore:
                continue
            case .finishEmpty:
                try await session.send(.downloadPeerFinishedRequest(Scheduler_V2_DownloadPeerFinishedRequest()))
                try await call.finishSending()
                return
            case .fail(let why):
                try? await session.send(.downloadPeerFailedRequest(Scheduler_V2_DownloadPeerFailedRequest.with { $0.descriptionField = why }))
                throw RPCError(code: .unavailable, message: why)
            case .giveUp(let why):
                throw RPCError(code: .unavailable, message: why)
            case .backToSource:
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
                try await markFinishedIfComplete(plan)
                try await session.send(.downloadPeerBackToSourceFinishedRequest(Scheduler_V2_DownloadPeerBackToSourceFinishedRequest()))
                try await call.finishSending()
                return
            case .fetch(let parents, let announceStarted):
                if announceStarted {
                    try await session.send(.downloadPeerStartedRequest(Scheduler_V2_DownloadPeerStartedRequest()))
                }
                let failed = try await fetchFromParents(plan, parents: parents, report: report, onPiece: { piece in
                    try? await session.send(.downloadPieceFinishedRequest(
                        Scheduler_V2_DownloadPieceFinishedRequest.with { $0.piece = piece }))
                }, onParentFailed: { parentID, pieceNumber in
                    // The scheduler counts it against the parent's host and blocks it for us.
                    try? await session.send(.downloadPieceFailedRequest(Scheduler_V2_DownloadPieceFailedRequest.with {
                        $0.pieceNumber = pieceNumber
                        $0.parentId = parentID
                        $0.temporary = true
                    }))
                })
                for id in failed { plan.log.warning("blocklisting parent \(id) for this download") }
                let missing = try await !missingPieces(plan).isEmpty
                switch follower.after(offered: parents, failed: failed, piecesMissing: missing) {
                case .finished:
                    try await markFinishedIfComplete(plan)
                    try await session.send(.downloadPeerFinishedRequest(Scheduler_V2_DownloadPeerFinishedRequest()))
                    try await call.finishSending()
                    return
                case .awaitAnswer:
                    continue
                case .reschedule(let request):
                    try await session.send(.reschedulePeerRequest(request))
                }
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
