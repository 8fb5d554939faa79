import GeneratedAPI
import RPCCore

/// The scheduler's records as `common.v2` messages.
extension SchedulerEngine {
    /// How much of a host a response shows, as upstream does: ListHosts everything,
    /// StatPeer all but sharing and cluster, candidate parents not even the name.
    enum HostDetail { case listing, stat, candidate }

    func hostView(_ host: HostRecord, _ detail: HostDetail) -> Common_V2_Host {
        var h = host.info
        if detail != .listing {
            h.disableShared = false
            h.schedulerClusterId = 0
        }
        if detail == .candidate { h.name = "" }
        return h
    }

    func taskView(_ task: TaskRecord, withPieces: Bool) -> Common_V2_Task {
        var t = Common_V2_Task()
        t.id = task.id
        t.type = task.download.type
        t.url = task.download.url
        t.digest = task.download.digest
        t.tag = task.download.tag
        t.application = task.download.application ?? ""
        t.filteredQueryParams = task.download.filteredQueryParams
        t.requestHeader = task.download.requestHeader
        t.contentLength = UInt64(max(0, task.contentLength))
        t.pieceCount = UInt32(max(0, task.totalPieceCount))
        t.sizeScope = task.sizeScope
        t.state = task.state.rawValue
        t.peerCount = UInt32(clamping: task.dag.count)
        t.createdAt = task.createdWall
        t.updatedAt = task.updatedWall
        if withPieces { t.pieces = task.pieces.keys.sorted().compactMap { task.pieces[$0] } }
        return t
    }

    func peerView(_ peer: PeerRecord, task: TaskRecord, withPieces: Bool) -> Common_V2_Peer {
        var p = Common_V2_Peer()
        p.id = peer.id
        p.range = peer.range
        p.priority = peer.priority
        p.cost = Google_Protobuf_Duration(peer.cost)
        p.state = peer.state.rawValue
        p.task = taskView(task, withPieces: withPieces)
        if let host = hosts[peer.hostID] { p.host = hostView(host, withPieces ? .stat : .candidate) }
        p.needBackToSource = peer.needBackToSource
        p.createdAt = peer.createdWall
        p.updatedAt = peer.updatedWall
        if withPieces { p.concurrentPieceCount = peer.concurrentPieceCount }
        return p
    }

    public func statPeer(peerID: String) throws(RPCError) -> Common_V2_Peer {
        metrics.statPeer.increment()
        let peer = try peer(peerID)
        guard let task = tasks[peer.taskID] else { throw RPCError(code: .notFound, message: "task \(peer.taskID) not found") }
        return peerView(peer, task: task, withPieces: true)
    }

    public func statTask(taskID: String) throws(RPCError) -> Common_V2_Task {
        metrics.statTask.increment()
        guard let task = tasks[taskID] else { throw RPCError(code: .notFound, message: "task \(taskID) not found") }
        return taskView(task, withPieces: true)
    }

    /// How many children are downloading from the host's peers right now.
    public func uploadsInProgress(hostID: String) -> Int? { hosts[hostID]?.concurrentUploadCount }

    /// Counts for tests and the console: hosts, tasks, peers.
    public func counts() -> (hosts: Int, tasks: Int, peers: Int) {
        (hosts.count, tasks.count, peers.count)
    }
}

extension SchedulerEngine {
    /// Every announced host by id, as a candidate parent shows it (no name, sharing or cluster).
    public func hostDirectory() -> [String: Common_V2_Host] {
        hosts.mapValues { hostView($0, .candidate) }
    }

    /// Every announced host's name, by id (the console shows names).
    public func hostnames() -> [String: String] {
        hosts.mapValues { $0.info.hostname }
    }

    /// Every announced seed host's id.
    public func seedHostIDs() -> Set<String> {
        Set(hosts.values.filter { $0.type.isSeed }.map(\.id))
    }
}
