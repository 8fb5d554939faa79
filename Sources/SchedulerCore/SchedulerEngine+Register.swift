import GeneratedAPI
import RPCCore

extension SchedulerEngine {
    func labels(_ peer: PeerRecord) -> (String, String, String) {
        let task = tasks[peer.taskID]
        return (peer.priority.description, task?.download.type.description ?? "STANDARD",
                hosts[peer.hostID]?.type.label ?? "normal")
    }

    func countPeer(_ name: String, _ peer: PeerRecord) {
        let (p, t, h) = labels(peer)
        metrics.peerCounter(name, priority: p, taskType: t, hostType: h).increment()
    }

    /// Creates (or finds) the task and peer, decides back-to-source, and may ask a seed
    /// peer to fetch the task. The stream is kept on the peer for later answers.
    public func registerPeer(hostID: String, taskID: String, peerID: String, download: Common_V2_Download,
                             stream: PeerStream) throws(RPCError) -> RegisterOutcome {
        guard let host = hosts[hostID] else { throw RPCError(code: .notFound, message: "host \(hostID) not found") }
        // A peer id names one download on one host; reusing it elsewhere would graft a peer
        // of one task onto another task's state.
        if let existing = peers[peerID], existing.taskID != taskID || existing.hostID != hostID {
            throw RPCError(code: .invalidArgument, message: "peer \(peerID) is already registered for another task or host")
        }
        let task: TaskRecord
        if let existing = tasks[taskID] {
            task = existing
            task.adopt(download)
            if task.contentLength < 0, let length = download.actualContentLength {
                task.contentLength = Int64(clamping: length)
                task.totalPieceCount = download.actualPieceCount.map { Int32(clamping: $0) } ?? task.totalPieceCount
                task.pieceLength = download.actualPieceLength ?? task.pieceLength
            }
        } else {
            task = TaskRecord(id: taskID, download: download, backToSourceLimit: settings.backToSourceCount, now: now)
            tasks[taskID] = task
        }
        let peer: PeerRecord
        if let existing = peers[peerID] {
            peer = existing
            if peer.stream == nil { peer.stream = stream }
        } else {
            peer = PeerRecord(id: peerID, taskID: taskID, hostID: hostID, download: download, now: now)
            peer.stream = stream
            peers[peerID] = peer
            task.dag.add(peerID)
            host.peers.insert(peerID)
        }
        countPeer("register_peer_total", peer)
        metrics.counter("download_peer_total", []).increment()

        if download.needBackToSource {
            peer.needBackToSource = true
        } else if [.pending, .failed, .leave].contains(task.state)
                    || (task.state == .succeeded && !hasAvailablePeer(task, excludingHost: hostID)) {
            if host.type == .normal, let seed = chooseSeed(for: taskID) {
                try triggerSeed(seed, task: task, download: download, priority: peer.priority)
                if peer.priority == .level3 { peer.needBackToSource = true }
            } else {
                peer.needBackToSource = true
            }
        }
        if task.state != .running { try fire(.download, on: task) } else { task.touch(now) }

        if task.sizeScope == .empty {
            try fire(.registerEmpty, on: peer)
            return .emptyTask
        }
        try fire(.registerNormal, on: peer)
        peer.blockParents.insert(peer.id)
        return .schedule
    }

    /// Dragonfly's priority rules for a task no seed has yet. The seed is handed the
    /// registering peer's own download, credentials included, since it must fetch the
    /// origin as that peer would; the task record keeps none of them.
    func triggerSeed(_ address: String, task: TaskRecord, download: Common_V2_Download,
                     priority: Common_V2_Priority) throws(RPCError) {
        switch priority {
        case .level1: throw RPCError(code: .failedPrecondition, message: "LEVEL1 peer is forbidden")
        case .level2: throw RPCError(code: .notFound, message: "LEVEL2 peer not found candidate peers")
        case .level3: return
        default: break
        }
        var seedDownload = download
        seedDownload.needBackToSource = true
        seedDownload.outputPath = nil
        if let f = seedDownloader {
            let request = SeedDownload(address: address, download: seedDownload)
            Task { await f(request) }
        }
    }

    /// A seed host picked by rendezvous hashing on the task id, so one task always goes
    /// to the same seed while the set of seeds is stable.
    func chooseSeed(for taskID: String) -> String? {
        var best: (UInt64, String)?
        for host in hosts.values where host.type.isSeed && !host.info.disableShared {
            let address = "\(host.info.ip):\(host.info.port)"
            let weight = fnv1a(taskID + "|" + address)
            if let current = best, current.0 >= weight { continue }
            best = (weight, address)
        }
        return best?.1
    }

    func hasAvailablePeer(_ task: TaskRecord, excludingHost hostID: String) -> Bool {
        task.dag.vertices.contains { id in
            guard let p = peers[id], p.hostID != hostID else { return false }
            return p.state == .running || p.state == .succeeded || p.state == .backToSource
        }
    }

    /// The stream is the RPC's; when the RPC ends the peer keeps its state but loses the stream.
    public func detachStream(peerID: String) {
        peers[peerID]?.stream = nil
    }
}

func fnv1a(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf29ce484222325
    for b in s.utf8 {
        h ^= UInt64(b)
        h = h &* 0x100000001b3
    }
    // A final mix so nearby strings spread over the whole range.
    h ^= h >> 33
    h = h &* 0xff51afd7ed558ccd
    h ^= h >> 33
    return h
}
