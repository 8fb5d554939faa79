import GeneratedAPI
import RPCCore

/// Handlers for what a peer reports on its AnnouncePeer stream after registering.
extension SchedulerEngine {
    public func downloadStarted(peerID: String) throws(RPCError) {
        let peer = try peer(peerID)
        countPeer("download_peer_started_total", peer)
        if peer.state != .running { try fire(.download, on: peer) }
    }

    public func backToSourceStarted(peerID: String) throws(RPCError) {
        let peer = try peer(peerID)
        countPeer("download_peer_back_to_source_started_total", peer)
        // A running peer whose parents failed it goes back to source too; as BackToSource it
        // is a usable parent at once, although no parent feeds it.
        if peer.state != .backToSource { try fire(.downloadBackToSource, on: peer) }
    }

    /// Adds the reporter's unwanted parents to its blocklist before it is scheduled again.
    public func reschedule(peerID: String, excluding parents: [String]) throws(RPCError) {
        let peer = try peer(peerID)
        // Only peers that exist can be parents; anything else would only grow the set.
        peer.blockParents.formUnion(parents.filter { peers[$0] != nil })
    }

    public func downloadFinished(peerID: String, backToSource: Bool) throws(RPCError) {
        let peer = try peer(peerID)
        peer.cost = now - peer.createdAt
        try fire(.downloadSucceeded, on: peer)
        countPeer("download_peer_finished_total", peer)
        if backToSource, peer.range == nil, let task = tasks[peer.taskID], task.state != .succeeded {
            try fire(.downloadSucceeded, on: task)
        }
    }

    public func downloadFailed(peerID: String, backToSource: Bool) throws(RPCError) {
        let peer = try peer(peerID)
        try fire(.downloadFailed, on: peer)
        countPeer("download_peer_finished_total", peer)
        countPeer(backToSource ? "download_peer_back_to_source_finished_failure_total" : "download_peer_finished_failure_total", peer)
        if backToSource, let task = tasks[peer.taskID] {
            task.contentLength = -1
            task.totalPieceCount = 0
            if task.state == .running { try fire(.downloadFailed, on: task) }
        }
    }

    /// A piece arrived at the peer, from a parent or from the origin.
    public func pieceFinished(peerID: String, piece: Common_V2_Piece, backToSource: Bool) throws(RPCError) {
        let peer = try peer(peerID)
        let task = tasks[peer.taskID]
        // Beyond a known piece count a number is a lie; keeping it would let one stream grow
        // the peer's and the task's piece tables without bound.
        if let task, task.totalPieceCount > 0, piece.number >= UInt32(task.totalPieceCount) {
            throw RPCError(code: .invalidArgument, message: "piece \(piece.number) is beyond the task's \(task.totalPieceCount) pieces")
        }
        if peer.finishedPieces.count < ReportBounds.maxTrackedPieces { peer.finishedPieces.insert(piece.number) }
        if let cost = piece.cost {
            // A negative cost would make every later piece look slow and the parent bad.
            let nanos = max(0, Double(cost.seconds) * 1e9 + Double(cost.nanos))
            peer.pieceCosts.append(nanos)
            metrics.pieceCost.record(nanos / 1e9)
        }
        peer.pieceUpdatedAt = now
        peer.touch(now)
        let (_, taskType, hostType) = labels(peer)
        let traffic = backToSource ? "BACK_TO_SOURCE" : (piece.trafficType?.description ?? "REMOTE_PEER")
        metrics.pieceCounter("download_piece_finished_total", trafficType: traffic, taskType: taskType, hostType: hostType).increment()
        metrics.traffic(type: traffic, taskType: taskType, hostType: hostType).increment(by: Int64(min(piece.length, ReportBounds.maxCountedPieceLength)))
        guard let task else { return }
        if backToSource {
            peer.backToSourcePieces += 1
            // StatTask lists where pieces are, not their bytes; a reporter that sends content
            // along must not make the scheduler hold it.
            var kept = piece
            kept.content = nil
            if task.pieces.count < ReportBounds.maxTrackedPieces || task.pieces[piece.number] != nil {
                task.pieces[piece.number] = kept
            }
            if task.pieceLength == 0 { task.pieceLength = piece.length }
        } else if let parentID = piece.parentId, let parent = peers[parentID] {
            // A parent that serves pieces is alive: keep it and its host from GC.
            parent.touch(now)
            hosts[parent.hostID]?.updatedAt = now
        }
        task.touch(now)
    }

    /// A piece failed. A temporary failure from a parent blocks that parent for this peer;
    /// the return value says whether the peer should be given new parents now.
    public func pieceFailed(peerID: String, parentID: String?, temporary: Bool, backToSource: Bool) throws(RPCError) -> Bool {
        let peer = try peer(peerID)
        peer.touch(now)
        let (_, taskType, hostType) = labels(peer)
        let traffic = backToSource ? "BACK_TO_SOURCE" : "REMOTE_PEER"
        metrics.pieceCounter("download_piece_finished_total", trafficType: traffic, taskType: taskType, hostType: hostType).increment()
        metrics.pieceCounter("download_piece_finished_failure_total", trafficType: traffic, taskType: taskType, hostType: hostType).increment()
        tasks[peer.taskID]?.touch(now)
        guard !backToSource, temporary, let parentID, !parentID.isEmpty else { return false }
        if let parent = peers[parentID] {
            peer.blockParents.insert(parentID)
            if let host = hosts[parent.hostID] { host.uploadFailedCount = host.uploadFailedCount.saturatingAdd(1) }
        }
        return peer.state == .running || peer.state == .receivedNormal
    }

    /// Marks a peer failed when its stream breaks off without a final report.
    public func peerStreamFailed(peerID: String) {
        guard let peer = peers[peerID], peer.state != .succeeded, peer.state != .failed, peer.state != .leave else { return }
        try? fire(.downloadFailed, on: peer)
    }

    // MARK: - Deletion

    /// Returns the children of the removed peer, to be given new parents.
    public func deletePeer(peerID: String) -> [String] {
        metrics.leavePeer.increment()
        return removePeer(peerID).filter { peers[$0] != nil }
    }

    /// Removes the host's peers of this task; returns their orphaned children.
    public func deleteTask(hostID: String, taskID: String) throws(RPCError) -> [String] {
        metrics.leaveTask.increment()
        guard let host = hosts[hostID] else { throw RPCError(code: .notFound, message: "host \(hostID) not found") }
        var orphans: [String] = []
        for id in host.peers where peers[id]?.taskID == taskID { orphans += removePeer(id) }
        return orphans.filter { peers[$0] != nil }
    }

    /// Peers that can take new parents right now (they still have an open stream).
    public func reschedulable(_ ids: [String]) -> [String] {
        ids.filter { id in
            guard let p = peers[id] else { return false }
            return p.stream != nil && (p.state == .running || p.state == .receivedNormal)
        }
    }
}
