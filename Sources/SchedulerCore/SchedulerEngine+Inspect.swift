import GeneratedAPI

/// The console's view of the scheduler: tasks and their peers' progress.
extension SchedulerEngine {
    /// The `limit` most recently updated tasks, each with its peers.
    public func taskSummaries(limit: Int) -> [Dfswift_Scheduler_V1_TaskSummary] {
        var peersByTask: [String: [PeerRecord]] = [:]
        for peer in peers.values { peersByTask[peer.taskID, default: []].append(peer) }
        let recent = tasks.values.sorted { $0.updatedAt > $1.updatedAt }.prefix(limit)
        return recent.map { task in
            var s = Dfswift_Scheduler_V1_TaskSummary()
            s.id = task.id
            s.url = task.download.url
            s.state = task.state.rawValue
            s.contentLength = UInt64(max(0, task.contentLength))
            s.pieceCount = UInt32(max(0, task.totalPieceCount))
            s.createdAt = task.createdWall
            s.updatedAt = task.updatedWall
            s.peers = (peersByTask[task.id] ?? []).sorted { $0.createdAt < $1.createdAt }.map { progress($0) }
            return s
        }
    }

    func progress(_ peer: PeerRecord) -> Dfswift_Scheduler_V1_PeerProgress {
        var p = Dfswift_Scheduler_V1_PeerProgress()
        p.id = peer.id
        p.hostId = peer.hostID
        if let host = hosts[peer.hostID] {
            p.hostname = host.info.hostname
            p.ip = host.info.ip
        }
        p.state = peer.state.rawValue
        p.finishedPieceCount = UInt32(clamping: peer.finishedPieces.count)
        p.backToSource = peer.state == .backToSource || peer.backToSourcePieces > 0
        p.updatedAt = peer.updatedWall
        return p
    }
}
