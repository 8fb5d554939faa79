import DragonflyCommon
import Foundation
import GeneratedAPI
import RPCCore

/// A task the cluster keeps in `persistent_replica_count` copies until its TTL, and the
/// copy on one host, as the registry shows them; the service turns them into
/// `PersistentCacheTask`/`PersistentTask` and their peers.
public struct KeptTask: Sendable, Equatable {
    public var id: String
    public var replicaCount: UInt64
    public var tag: String?
    public var application: String?
    /// A persistent task's origin; nil for a persistent cache task, which has none.
    public var url: String?
    public var pieceLength: UInt64
    public var contentLength: UInt64
    public var pieceCount: UInt32
    public var ttl: Duration
    public var state = ""
    public var currentPersistentReplicaCount: UInt64 = 0
    public var currentReplicaCount: UInt64 = 0
    public var createdAt = Date.distantPast
    public var updatedAt = Date.distantPast

    public init(id: String, replicaCount: UInt64, tag: String? = nil, application: String? = nil, url: String? = nil,
                pieceLength: UInt64, contentLength: UInt64, pieceCount: UInt32, ttl: Duration) {
        self.id = id
        self.replicaCount = replicaCount
        self.tag = tag
        self.application = application
        self.url = url
        self.pieceLength = pieceLength
        self.contentLength = contentLength
        self.pieceCount = pieceCount
        self.ttl = ttl
    }
}

public struct KeptPeer: Sendable {
    public var id: String
    public var persistent: Bool
    public var state: String
    public var cost: Duration?
    public var host: Common_V2_Host?
    public var hostID: String
    public var createdAt: Date
    public var updatedAt: Date
    public var task: KeptTask
}

/// Tasks the cluster keeps (persistent cache tasks from `dfcache import`, and persistent
/// tasks of an origin), which hosts hold which copy, in which state, as upstream's
/// scheduler tracks them. One registry per kind.
public actor ReplicaRegistry {
    public enum TaskState: String, Sendable { case pending = "Pending", uploading = "Uploading", succeeded = "Succeeded", failed = "Failed" }
    public enum PeerState: String, Sendable {
        case pending = "Pending", uploading = "Uploading", receivedEmpty = "ReceivedEmpty", receivedNormal = "ReceivedNormal"
        case running = "Running", succeeded = "Succeeded", failed = "Failed"
    }

    struct Peer {
        let id: String
        let hostID: String
        var persistent: Bool
        var state: PeerState
        var blockedParents: Set<String> = []
        var cost: Duration?
        let createdAt: Date
        var updatedAt: Date
    }

    /// What a download's registration gets: nothing to fetch, parents, or the origin.
    public enum Registration: Sendable {
        case empty
        case parents([KeptPeer])
        /// Only for a task with an origin (a persistent task) that no peer can serve yet.
        case backToSource
    }

    struct Entry {
        var task: KeptTask
        var state: TaskState
        let createdAt: Date
        let ttl: Duration
        var peers: [String: Peer] = [:]

        func expired(at now: Date) -> Bool { now >= createdAt.addingTimeInterval(ttl.seconds) }
        var lastChange: Date { peers.values.map(\.updatedAt).max() ?? createdAt }
    }

    /// Bounds what one caller can make this scheduler hold.
    public static let maxTasks = 100_000
    public static let maxPeersPerTask = 10_000
    /// An import silent this long no longer holds its task id.
    public static let staleUpload = Duration.seconds(3600)
    /// The longest TTL taken (upstream's dfcache allows 7 days).
    public static let maxTTL = Duration.seconds(7 * 86_400)

    var tasks: [String: Entry] = [:] {
        didSet { dirty = true }
    }
    /// Something changed since the last snapshot.
    var dirty = false
    private let candidateParentLimit: Int
    /// "persistent cache task" or "persistent task", for messages.
    let noun: String

    public init(noun: String = "persistent cache task", candidateParentLimit: Int = 3) {
        self.noun = noun
        self.candidateParentLimit = max(1, candidateParentLimit)
    }

    // MARK: - Import

    /// A host begins importing `task`; it holds the first, persistent copy.
    public func uploadStarted(_ task: KeptTask, hostID: String, peerID: String, now: Date = Date()) throws(RPCError) {
        try Self.checkIDs(host: hostID, task: task.id, peer: peerID)
        guard task.replicaCount >= 1, task.replicaCount <= 1_000 else {
            throw RPCError(code: .invalidArgument, message: "persistent_replica_count must be 1 to 1000, not \(task.replicaCount)")
        }
        guard task.pieceLength > 0, task.pieceLength <= 1 << 30 else {
            throw RPCError(code: .invalidArgument, message: "piece_length \(task.pieceLength) is out of range")
        }
        guard task.contentLength <= UInt64(Int64.max),
              UInt64(task.pieceCount) == (task.contentLength + task.pieceLength - 1) / task.pieceLength else {
            throw RPCError(code: .invalidArgument,
                           message: "piece_count \(task.pieceCount) does not match \(task.contentLength) bytes in pieces of \(task.pieceLength)")
        }
        guard task.ttl >= .seconds(1), task.ttl <= Self.maxTTL else {
            throw RPCError(code: .invalidArgument, message: "ttl must be between one second and \(Self.maxTTL.components.seconds / 86_400) days")
        }
        dropExpired(now: now)
        // An upload that stopped moving long ago (its importer died, or a caller only
        // claimed the id) does not hold the id until its TTL.
        if let existing = tasks[task.id], existing.state == .succeeded
            || (existing.state == .uploading && now.timeIntervalSince(existing.lastChange) < Self.staleUpload.seconds) {
            throw RPCError(code: .alreadyExists, message: "\(noun) \(task.id) is already \(existing.state.rawValue)")
        }
        guard tasks.count < Self.maxTasks else {
            throw RPCError(code: .resourceExhausted, message: "this scheduler holds \(Self.maxTasks) \(noun)s")
        }
        var entry = Entry(task: task, state: .uploading, createdAt: now, ttl: task.ttl)
        entry.peers[peerID] = Peer(id: peerID, hostID: hostID, persistent: true, state: .uploading, createdAt: now, updatedAt: now)
        tasks[task.id] = entry
    }

    public func uploadFinished(taskID: String, peerID: String, now: Date = Date()) throws(RPCError) -> KeptTask {
        guard var entry = tasks[taskID], entry.state == .uploading, entry.peers[peerID]?.state == .uploading else {
            throw RPCError(code: .failedPrecondition, message: "\(noun) \(taskID) is not being uploaded by peer \(peerID)")
        }
        entry.state = .succeeded
        entry.peers[peerID]?.state = .succeeded
        entry.peers[peerID]?.updatedAt = now
        tasks[taskID] = entry
        return view(entry, now: now)
    }

    public func uploadFailed(taskID: String, peerID: String) {
        guard var entry = tasks[taskID], entry.state == .uploading, entry.peers[peerID] != nil else { return }
        entry.state = .failed
        entry.peers[peerID] = nil
        tasks[taskID] = entry
    }

    // MARK: - Downloads (AnnouncePersistentCachePeer)

    /// Registers a peer that will fetch the task: nothing to fetch for an empty task, else
    /// the parents to fetch from (peers on other hosts that hold or are fetching it, those in
    /// the downloader's IDC and location first), or, for a task with an origin that no peer
    /// can serve yet, the origin.
    public func register(hostID: String, taskID: String, peerID: String, persistent: Bool, needBackToSource: Bool = false,
                         hosts: [String: Common_V2_Host], now: Date = Date()) throws(RPCError) -> Registration {
        try Self.checkIDs(host: hostID, task: taskID, peer: peerID)
        guard hosts[hostID] != nil else { throw RPCError(code: .notFound, message: "host \(hostID) not found") }
        dropExpired(now: now)
        guard var entry = tasks[taskID], entry.state == .succeeded || (entry.task.url != nil && entry.state == .uploading) else {
            throw RPCError(code: .notFound, message: "\(noun) \(taskID) not found")
        }
        guard entry.peers.count < Self.maxPeersPerTask || entry.peers[peerID] != nil else {
            throw RPCError(code: .resourceExhausted, message: "\(noun) \(taskID) has \(Self.maxPeersPerTask) peers")
        }
        let empty = entry.task.contentLength == 0
        entry.peers[peerID] = Peer(id: peerID, hostID: hostID, persistent: persistent,
                                   state: empty ? .receivedEmpty : .receivedNormal, createdAt: now, updatedAt: now)
        tasks[taskID] = entry
        if empty { return .empty }
        return try answer(entry, for: peerID, needBackToSource: needBackToSource, hosts: hosts, now: now)
    }

    public func reschedule(taskID: String, peerID: String, excluding: [String], hosts: [String: Common_V2_Host],
                           now: Date = Date()) throws(RPCError) -> Registration {
        guard var entry = tasks[taskID], entry.peers[peerID] != nil else {
            throw RPCError(code: .notFound, message: "peer \(peerID) of \(noun) \(taskID) not found")
        }
        entry.peers[peerID]?.blockedParents.formUnion(excluding.prefix(1_000))
        tasks[taskID] = entry
        return try answer(entry, for: peerID, needBackToSource: false, hosts: hosts, now: now)
    }

    private func answer(_ entry: Entry, for peerID: String, needBackToSource: Bool, hosts: [String: Common_V2_Host],
                        now: Date) throws(RPCError) -> Registration {
        let hasOrigin = entry.task.url != nil
        if hasOrigin && needBackToSource { return .backToSource }
        let parents = candidates(entry, for: peerID, hosts: hosts, now: now)
        if !parents.isEmpty { return .parents(parents) }
        if hasOrigin { return .backToSource }
        throw RPCError(code: .failedPrecondition, message: "no candidate parents found for \(noun) \(entry.task.id)")
    }

    /// A peer that fetched from the origin holds a copy like any other.
    public func backToSourceStarted(taskID: String, peerID: String, now: Date = Date()) {
        peerStarted(taskID: taskID, peerID: peerID, now: now)
    }

    public func peerStarted(taskID: String, peerID: String, now: Date = Date()) {
        update(taskID, peerID, now) { if $0.state == .receivedNormal || $0.state == .receivedEmpty { $0.state = .running } }
    }

    public func peerFinished(taskID: String, peerID: String, now: Date = Date()) {
        update(taskID, peerID, now) { p in
            p.state = .succeeded
            p.cost = .seconds(now.timeIntervalSince(p.createdAt))
        }
    }

    public func peerFailed(taskID: String, peerID: String, now: Date = Date()) {
        update(taskID, peerID, now) { $0.state = .failed }
    }

    public func blockParent(taskID: String, peerID: String, parentID: String) {
        update(taskID, peerID, Date()) { p in if p.blockedParents.count < 1_000 { p.blockedParents.insert(parentID) } }
    }

    private func update(_ taskID: String, _ peerID: String, _ now: Date, _ change: (inout Peer) -> Void) {
        guard var peer = tasks[taskID]?.peers[peerID] else { return }
        change(&peer)
        peer.updatedAt = now
        tasks[taskID]?.peers[peerID] = peer
    }

    /// The upload counts are not ours to keep, so parents are ordered by where they are:
    /// 0.7 for the same IDC, 0.3 for the share of location levels in common (as upstream).
    private func candidates(_ entry: Entry, for peerID: String, hosts: [String: Common_V2_Host], now: Date) -> [KeptPeer] {
        guard let me = entry.peers[peerID], let myHost = hosts[me.hostID] else { return [] }
        let usable = entry.peers.values.filter { p in
            p.id != peerID && p.hostID != me.hostID && !me.blockedParents.contains(p.id)
                && (p.state == .succeeded || p.state == .running) && hosts[p.hostID] != nil
        }
        func score(_ p: Peer) -> Double {
            guard let h = hosts[p.hostID] else { return 0 }
            let idc = myHost.network?.idc ?? "", theirIDC = h.network?.idc ?? ""
            let sameIDC = !idc.isEmpty && idc == theirIDC ? 1.0 : 0.0
            let mine = (myHost.network?.location ?? "").split(separator: "|").prefix(5)
            let theirs = (h.network?.location ?? "").split(separator: "|").prefix(5)
            let common = zip(mine, theirs).prefix { $0 == $1 }.count
            return 0.7 * sameIDC + 0.3 * Double(common) / 5
        }
        // Finished copies before ones still arriving, then by place; ids break ties.
        return usable.sorted { a, b in
            let (sa, sb) = (score(a), score(b))
            if (a.state == .succeeded) != (b.state == .succeeded) { return a.state == .succeeded }
            return sa != sb ? sa > sb : a.id < b.id
        }.prefix(candidateParentLimit).map { peerView($0, entry, hosts: hosts, now: now) }
    }

    // MARK: - Views and removal

    public func stat(taskID: String, now: Date = Date()) throws(RPCError) -> KeptTask {
        dropExpired(now: now)
        guard let entry = tasks[taskID] else { throw RPCError(code: .notFound, message: "\(noun) \(taskID) not found") }
        return view(entry, now: now)
    }

    public func statPeer(taskID: String, peerID: String, hosts: [String: Common_V2_Host], now: Date = Date()) throws(RPCError) -> KeptPeer {
        dropExpired(now: now)
        guard let entry = tasks[taskID], let peer = entry.peers[peerID] else {
            throw RPCError(code: .notFound, message: "peer \(peerID) of \(noun) \(taskID) not found")
        }
        return peerView(peer, entry, hosts: hosts, now: now)
    }

    /// Removes the task; returns the hosts that held a copy, to be told to drop it.
    public func delete(taskID: String) throws(RPCError) -> [String] {
        guard let entry = tasks.removeValue(forKey: taskID) else {
            throw RPCError(code: .notFound, message: "\(noun) \(taskID) not found")
        }
        return Array(Set(entry.peers.values.map(\.hostID)))
    }

    /// Removes one peer; returns its host, to be told to drop its copy.
    public func deletePeer(taskID: String, peerID: String) throws(RPCError) -> String {
        guard let peer = tasks[taskID]?.peers.removeValue(forKey: peerID) else {
            throw RPCError(code: .notFound, message: "peer \(peerID) of \(noun) \(taskID) not found")
        }
        return peer.hostID
    }

    /// Every peer on a host that left or stopped announcing itself is gone with it.
    public func forgetHosts(except live: Set<String>) -> Int {
        var removed = 0
        for (id, entry) in tasks {
            let gone = entry.peers.values.filter { !live.contains($0.hostID) }
            for p in gone { tasks[id]?.peers[p.id] = nil }
            removed += gone.count
        }
        return removed
    }

    /// Tasks past their TTL are forgotten; returns how many.
    @discardableResult
    public func dropExpired(now: Date = Date()) -> Int {
        let expired = tasks.filter { $0.value.expired(at: now) }.map(\.key)
        for id in expired { tasks[id] = nil }
        return expired.count
    }

    /// What keeping `persistent_replica_count` copies needs now, per task: copies to make
    /// persistent (a cached replica already there) and hosts to fetch a new one.
    public struct Shortfall: Sendable {
        public let task: KeptTask
        public let promote: [(peerID: String, hostID: String)]
        public let missing: Int
        /// Hosts that hold or are fetching a copy: a new replica goes elsewhere.
        public let occupied: Set<String>
    }

    public func shortfalls(now: Date = Date()) -> [Shortfall] {
        dropExpired(now: now)
        return tasks.values.filter { $0.state == .succeeded }.compactMap { entry in
            let live = entry.peers.values.filter { $0.state != .failed }
            let persistent = live.filter { $0.persistent }.count
            let need = Int(clamping: entry.task.replicaCount) - persistent
            guard need > 0 else { return nil }
            let cached = live.filter { !$0.persistent && $0.state == .succeeded }.sorted { $0.id < $1.id }.prefix(need)
            return Shortfall(task: view(entry, now: now), promote: cached.map { ($0.id, $0.hostID) },
                             missing: need - cached.count, occupied: Set(live.map(\.hostID)))
        }
    }

    public func markPersistent(taskID: String, peerID: String) {
        update(taskID, peerID, Date()) { $0.persistent = true }
    }

    /// Every task with its peers, for the console.
    public func list(hosts: [String: Common_V2_Host], now: Date = Date()) -> [(KeptTask, [KeptPeer])] {
        dropExpired(now: now)
        return tasks.values.sorted { $0.task.id < $1.task.id }.map { entry in
            (view(entry, now: now), entry.peers.values.sorted { $0.id < $1.id }.map { peerView($0, entry, hosts: hosts, now: now) })
        }
    }

    private func view(_ entry: Entry, now: Date) -> KeptTask {
        var t = entry.task
        let live = entry.peers.values.filter { $0.state != .failed }
        t.currentPersistentReplicaCount = UInt64(live.filter { $0.persistent && $0.state == .succeeded }.count)
        t.currentReplicaCount = UInt64(live.filter { $0.state == .succeeded }.count)
        t.state = entry.state.rawValue
        t.createdAt = entry.createdAt
        t.updatedAt = entry.peers.values.map(\.updatedAt).max() ?? entry.createdAt
        return t
    }

    private func peerView(_ p: Peer, _ entry: Entry, hosts: [String: Common_V2_Host], now: Date) -> KeptPeer {
        KeptPeer(id: p.id, persistent: p.persistent, state: p.state.rawValue, cost: p.cost, host: hosts[p.hostID], hostID: p.hostID,
                 createdAt: p.createdAt, updatedAt: p.updatedAt, task: view(entry, now: now))
    }

    static func timestamp(_ date: Date) -> Google_Protobuf_Timestamp {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        return Google_Protobuf_Timestamp(seconds: Int64(seconds), nanos: Int32((date.timeIntervalSince1970 - seconds) * 1e9))
    }

    /// Ids become map keys and log text; bound them like the dfdaemon's.
    static func checkIDs(host: String, task: String, peer: String) throws(RPCError) {
        for (name, value) in [("host_id", host), ("task_id", task), ("peer_id", peer)] {
            guard !value.isEmpty, value.utf8.count <= 256 else {
                throw RPCError(code: .invalidArgument, message: "\(name) must be 1 to 256 bytes")
            }
        }
        guard task.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            throw RPCError(code: .invalidArgument, message: "task_id must be lowercase hex")
        }
    }

    /// A TTL from the wire: at least a second, at most `maxTTL`.
    public static func checkedTTL(_ value: Google_Protobuf_Duration?) throws(RPCError) -> Duration {
        guard let value, value.nanos >= 0, value.nanos < 1_000_000_000, value.seconds >= 1 else {
            throw RPCError(code: .invalidArgument, message: "ttl must be at least one second")
        }
        guard value.seconds <= maxTTL.components.seconds else {
            throw RPCError(code: .invalidArgument, message: "ttl must be at most \(maxTTL.components.seconds / 86_400) days")
        }
        return .seconds(value.seconds)
    }
}

extension Duration {
    var seconds: TimeInterval { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

