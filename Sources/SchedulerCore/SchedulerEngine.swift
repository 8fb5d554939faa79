import GeneratedAPI
import Logging
import RPCCore
import DragonflyCommon

/// The scheduler's whole state — hosts, tasks, peers and who downloads from whom — and
/// every decision taken on it. An actor: gRPC handlers call in concurrently; waiting
/// (retry intervals, sending on streams) happens outside it.
public actor SchedulerEngine {
    let settings: SchedulerSettings
    let metrics: SchedulerMetrics
    let logger: Logger
    var hosts: [String: HostRecord] = [:]
    var tasks: [String: TaskRecord] = [:]
    var peers: [String: PeerRecord] = [:]
    /// Seeded once from the system; sampling parents needs speed, not secrecy.
    var rng = SplitMix64(seed: UInt64.random(in: .min ... .max))
    /// Set by the service: how to ask a seed peer to fetch a task.
    var seedDownloader: (@Sendable (SeedDownload) async -> Void)?
    let clock = ContinuousClock()

    public init(settings: SchedulerSettings, metrics: SchedulerMetrics, logger: Logger = Logger(label: "scheduler")) {
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
    }

    public func setSeedDownloader(_ f: @escaping @Sendable (SeedDownload) async -> Void) {
        seedDownloader = f
    }

    var now: ContinuousClock.Instant { clock.now }

    // MARK: - Hosts

    public func announceHost(_ info: Common_V2_Host, interval rawInterval: Duration?) {
        let interval = rawInterval.map { Swift.min(Swift.max($0, .zero), ReportBounds.maxAnnounceInterval) }
        let type = HostType(rawValue: info.type) ?? .normal
        metrics.announceHost.increment()
        if let host = hosts[info.id] {
            var merged = info
            // Identity fields stay as first announced, as Dragonfly does.
            merged.ip = host.info.ip
            merged.hostname = host.info.hostname
            merged.name = host.info.name
            if merged.cpu == nil { merged.cpu = host.info.cpu }
            if merged.memory == nil { merged.memory = host.info.memory }
            if merged.network == nil { merged.network = host.info.network }
            if merged.disk == nil { merged.disk = host.info.disk }
            if merged.build == nil { merged.build = host.info.build }
            host.info = merged
            host.type = type
            if let interval { host.announceInterval = interval }
            host.updatedAt = now
            return
        }
        let limit = type.isSeed ? settings.seedHostUploadLimit : settings.normalHostUploadLimit
        let host = HostRecord(info: info, type: type, uploadLimit: limit, now: now)
        host.announceInterval = interval
        hosts[info.id] = host
    }

    /// `type` nil: all hosts; 0: normal hosts; 1: seed hosts; others: none (as upstream).
    public func listHosts(type: UInt32?) -> [Common_V2_Host] {
        metrics.listHosts.increment()
        return hosts.values.filter { host in
            switch type {
            case nil: return true
            case 0?: return host.type == .normal
            case 1?: return host.type.isSeed
            default: return false
            }
        }.map { hostView($0, .listing) }
    }

    /// Removes a host and its peers; their children are returned for rescheduling.
    public func deleteHost(_ id: String) throws -> [String] {
        metrics.leaveHost.increment()
        guard let host = hosts[id] else { throw RPCError(code: .notFound, message: "host \(id) not found") }
        var orphans: [String] = []
        for peerID in host.peers {
            orphans += removePeer(peerID)
        }
        hosts.removeValue(forKey: id)
        return orphans.filter { peers[$0] != nil }
    }

    // MARK: - Peer removal

    /// Takes a peer out of every structure, releasing its parents' upload slots. Returns
    /// the peers that were downloading from it.
    @discardableResult
    func removePeer(_ id: String) -> [String] {
        guard let peer = peers.removeValue(forKey: id) else { return [] }
        var orphans: [String] = []
        if let task = tasks[peer.taskID] {
            releaseParents(of: peer, in: task)
            orphans = Array(task.dag.removeOutEdges(id))
            for child in orphans { if let c = peers[child] { releaseEdge(parentHostOf: peer, child: c, task: task) } }
            task.dag.remove(id)
            task.backToSourcePeers.remove(id)
        }
        hosts[peer.hostID]?.peers.remove(id)
        return orphans
    }

    /// Removes the peer's in-edges and gives back what each edge took from its parent's host.
    func releaseParents(of peer: PeerRecord, in task: TaskRecord) {
        for parentID in task.dag.removeInEdges(peer.id) {
            if let parent = peers[parentID] { releaseEdge(parentHostOf: parent, child: peer, task: task) }
        }
    }

    /// Gives back exactly what `claimEdge` took for this edge; an edge never claimed (its
    /// host was unknown then) gives back nothing.
    func releaseEdge(parentHostOf parent: PeerRecord, child: PeerRecord, task: TaskRecord) {
        guard let claim = child.parentClaims.removeValue(forKey: parent.id), let host = hosts[parent.hostID] else { return }
        host.concurrentUploadCount = host.concurrentUploadCount.flooredSubtract(1)
        host.txBandwidth = host.txBandwidth.flooredSubtract(claim.bandwidth)
        host.concurrentUploadPieceCount = host.concurrentUploadPieceCount.flooredSubtract(claim.pieceCount)
        host.uploadContentLength = host.uploadContentLength.flooredSubtract(claim.contentLength)
    }

    func claimEdge(parentHostOf parent: PeerRecord, child: PeerRecord, task: TaskRecord) {
        guard let host = hosts[parent.hostID] else { return }
        let claim = EdgeClaim(bandwidth: peakBandwidth(child, task), pieceCount: Int(child.concurrentPieceCount),
                              contentLength: UInt64(max(0, task.contentLength)))
        child.parentClaims[parent.id] = claim
        host.uploadCount = host.uploadCount.saturatingAdd(1)
        host.concurrentUploadCount = host.concurrentUploadCount.saturatingAdd(1)
        host.txBandwidth = host.txBandwidth.saturatingAdd(claim.bandwidth)
        host.concurrentUploadPieceCount = host.concurrentUploadPieceCount.saturatingAdd(claim.pieceCount)
        host.uploadContentLength = host.uploadContentLength.saturatingAdd(claim.contentLength)
    }

    /// Bits/s a child may pull at its peak: piece length × concurrent pieces × 8, saturated
    /// (a wrapped product would make a hostile child look idle, a trapping one kill us).
    func peakBandwidth(_ child: PeerRecord, _ task: TaskRecord) -> UInt64 {
        task.pieceLength.saturatingMultiply(UInt64(child.concurrentPieceCount)).saturatingMultiply(8)
    }

    // MARK: - Events

    func fire(_ event: PeerEvent, on peer: PeerRecord) throws(RPCError) {
        guard let next = event.transition(from: peer.state) else {
            throw RPCError(code: .internal, message: "peer \(peer.id): event \(event.rawValue) not allowed in state \(peer.state.rawValue)")
        }
        let previous = peer.state
        peer.state = next
        guard let task = tasks[peer.taskID] else { return }
        switch event {
        case .downloadBackToSource:
            task.backToSourcePeers.insert(peer.id)
            releaseParents(of: peer, in: task)
        case .downloadSucceeded:
            if previous == .backToSource { task.backToSourcePeers.remove(peer.id) }
            releaseParents(of: peer, in: task)
            task.peerFailedCount = 0
        case .downloadFailed:
            if previous == .backToSource {
                task.peerFailedCount += 1
                task.backToSourcePeers.remove(peer.id)
            }
            releaseParents(of: peer, in: task)
        case .leave:
            releaseParents(of: peer, in: task)
            task.backToSourcePeers.remove(peer.id)
            return
        default:
            break
        }
        peer.touch(now)
    }

    func fire(_ event: TaskEvent, on task: TaskRecord) throws(RPCError) {
        guard let next = event.transition(from: task.state) else {
            throw RPCError(code: .internal, message: "task \(task.id): event \(event) not allowed in state \(task.state.rawValue)")
        }
        task.state = next
        task.touch(now)
    }

    func peer(_ id: String) throws(RPCError) -> PeerRecord {
        guard let p = peers[id] else { throw RPCError(code: .notFound, message: "peer \(id) not found") }
        return p
    }
}

/// A small, fast pseudo-random generator (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e3779b97f4a7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58476d1ce4e5b9
        z = (z ^ (z >> 27)) &* 0x94d049bb133111eb
        return z ^ (z >> 31)
    }
}
