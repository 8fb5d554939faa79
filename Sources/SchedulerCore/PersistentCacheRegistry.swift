import DragonflyCommon
import Foundation
import GeneratedAPI
import RPCCore

/// Persistent cache tasks (`dfcache import`): content a node imported, which the cluster
/// keeps in `persistent_replica_count` copies until its TTL, with no origin to go back to.
/// Which hosts hold which replica, in which state, as upstream's scheduler tracks them.
/// The state lives in memory: a restarted scheduler forgets the tasks (upstream keeps them
/// in Redis), while every node still holds and serves its copies until their TTL.
public actor PersistentCacheRegistry {
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

    struct Entry {
        var task: Common_V2_PersistentCacheTask
        var state: TaskState
        let createdAt: Date
        let ttl: Duration
        var peers: [String: Peer] = [:]

        func expired(at now: Date) -> Bool { now >= createdAt.addingTimeInterval(ttl.seconds) }
    }

    /// Bounds what one caller can make this scheduler hold.
    public static let maxTasks = 100_000
    public static let maxPeersPerTask = 10_000
    /// The longest TTL taken (upstream's dfcache allows 7 days).
    public static let maxTTL = Duration.seconds(7 * 86_400)

    private var tasks: [String: Entry] = [:] {
        didSet { dirty = true }
    }
    /// Something changed since the last snapshot.
    private var dirty = false
    private let candidateParentLimit: Int

    public init(candidateParentLimit: Int = 3) {
        self.candidateParentLimit = max(1, candidateParentLimit)
    }

    // MARK: - Import

    public func uploadStarted(_ r: Scheduler_V2_UploadPersistentCacheTaskStartedRequest, now: Date = Date()) throws(RPCError) {
        try Self.checkIDs(host: r.hostId, task: r.taskId, peer: r.peerId)
        guard r.persistentReplicaCount >= 1, r.persistentReplicaCount <= 1_000 else {
            throw RPCError(code: .invalidArgument, message: "persistent_replica_count must be 1 to 1000, not \(r.persistentReplicaCount)")
        }
        guard r.pieceLength > 0, r.pieceLength <= 1 << 30 else {
            throw RPCError(code: .invalidArgument, message: "piece_length \(r.pieceLength) is out of range")
        }
        guard r.contentLength <= UInt64(Int64.max),
              UInt64(r.pieceCount) == (r.contentLength + r.pieceLength - 1) / r.pieceLength else {
            throw RPCError(code: .invalidArgument, message: "piece_count \(r.pieceCount) does not match \(r.contentLength) bytes in pieces of \(r.pieceLength)")
        }
        let ttl = try Self.checkedTTL(r.ttl)
        dropExpired(now: now)
        if let existing = tasks[r.taskId], existing.state == .uploading || existing.state == .succeeded {
            throw RPCError(code: .alreadyExists, message: "persistent cache task \(r.taskId) is already \(existing.state.rawValue)")
        }
        guard tasks.count < Self.maxTasks else {
            throw RPCError(code: .resourceExhausted, message: "this scheduler holds \(Self.maxTasks) persistent cache tasks")
        }
        var task = Common_V2_PersistentCacheTask()
        task.id = r.taskId
        task.persistentReplicaCount = r.persistentReplicaCount
        task.tag = r.tag
        task.application = r.application
        task.pieceLength = r.pieceLength
        task.contentLength = r.contentLength
        task.pieceCount = r.pieceCount
        task.ttl = Google_Protobuf_Duration(ttl)
        var entry = Entry(task: task, state: .uploading, createdAt: now, ttl: ttl)
        entry.peers[r.peerId] = Peer(id: r.peerId, hostID: r.hostId, persistent: true, state: .uploading, createdAt: now, updatedAt: now)
        tasks[r.taskId] = entry
    }

    public func uploadFinished(taskID: String, peerID: String, now: Date = Date()) throws(RPCError) -> Common_V2_PersistentCacheTask {
        guard var entry = tasks[taskID], entry.state == .uploading, entry.peers[peerID]?.state == .uploading else {
            throw RPCError(code: .failedPrecondition, message: "persistent cache task \(taskID) is not being uploaded by peer \(peerID)")
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

    /// Registers a peer that will fetch the task; returns nil for an empty task, else the
    /// parents to fetch from: peers on other hosts that hold or are fetching it, those in
    /// the downloader's IDC and location first.
    public func register(hostID: String, taskID: String, peerID: String, persistent: Bool,
                         hosts: [String: Common_V2_Host], now: Date = Date()) throws(RPCError) -> [Common_V2_PersistentCachePeer]? {
        try Self.checkIDs(host: hostID, task: taskID, peer: peerID)
        guard hosts[hostID] != nil else { throw RPCError(code: .notFound, message: "host \(hostID) not found") }
        dropExpired(now: now)
        guard var entry = tasks[taskID], entry.state == .succeeded else {
            throw RPCError(code: .notFound, message: "persistent cache task \(taskID) not found")
        }
        guard entry.peers.count < Self.maxPeersPerTask || entry.peers[peerID] != nil else {
            throw RPCError(code: .resourceExhausted, message: "persistent cache task \(taskID) has \(Self.maxPeersPerTask) peers")
        }
        let empty = entry.task.contentLength == 0
        entry.peers[peerID] = Peer(id: peerID, hostID: hostID, persistent: persistent,
                                   state: empty ? .receivedEmpty : .receivedNormal, createdAt: now, updatedAt: now)
        tasks[taskID] = entry
        if empty { return nil }
        let parents = candidates(entry, for: peerID, hosts: hosts, now: now)
        guard !parents.isEmpty else {
            throw RPCError(code: .failedPrecondition, message: "no candidate parents found for persistent cache task \(taskID)")
        }
        return parents
    }

    public func reschedule(taskID: String, peerID: String, excluding: [String], hosts: [String: Common_V2_Host],
                           now: Date = Date()) throws(RPCError) -> [Common_V2_PersistentCachePeer] {
        guard var entry = tasks[taskID], entry.peers[peerID] != nil else {
            throw RPCError(code: .notFound, message: "peer \(peerID) of persistent cache task \(taskID) not found")
        }
        entry.peers[peerID]?.blockedParents.formUnion(excluding.prefix(1_000))
        tasks[taskID] = entry
        let parents = candidates(entry, for: peerID, hosts: hosts, now: now)
        guard !parents.isEmpty else {
            throw RPCError(code: .failedPrecondition, message: "no candidate parents found for persistent cache task \(taskID)")
        }
        return parents
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
    private func candidates(_ entry: Entry, for peerID: String, hosts: [String: Common_V2_Host], now: Date) -> [Common_V2_PersistentCachePeer] {
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

    public func stat(taskID: String, now: Date = Date()) throws(RPCError) -> Common_V2_PersistentCacheTask {
        dropExpired(now: now)
        guard let entry = tasks[taskID] else { throw RPCError(code: .notFound, message: "persistent cache task \(taskID) not found") }
        return view(entry, now: now)
    }

    public func statPeer(taskID: String, peerID: String, hosts: [String: Common_V2_Host], now: Date = Date()) throws(RPCError) -> Common_V2_PersistentCachePeer {
        dropExpired(now: now)
        guard let entry = tasks[taskID], let peer = entry.peers[peerID] else {
            throw RPCError(code: .notFound, message: "peer \(peerID) of persistent cache task \(taskID) not found")
        }
        return peerView(peer, entry, hosts: hosts, now: now)
    }

    /// Removes the task; returns the hosts that held a copy, to be told to drop it.
    public func delete(taskID: String) throws(RPCError) -> [String] {
        guard let entry = tasks.removeValue(forKey: taskID) else {
            throw RPCError(code: .notFound, message: "persistent cache task \(taskID) not found")
        }
        return Array(Set(entry.peers.values.map(\.hostID)))
    }

    /// Removes one peer; returns its host, to be told to drop its copy.
    public func deletePeer(taskID: String, peerID: String) throws(RPCError) -> String {
        guard let peer = tasks[taskID]?.peers.removeValue(forKey: peerID) else {
            throw RPCError(code: .notFound, message: "peer \(peerID) of persistent cache task \(taskID) not found")
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
        public let task: Common_V2_PersistentCacheTask
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
            let need = Int(clamping: entry.task.persistentReplicaCount) - persistent
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
    public func list(hosts: [String: Common_V2_Host], now: Date = Date()) -> [(Common_V2_PersistentCacheTask, [Common_V2_PersistentCachePeer])] {
        dropExpired(now: now)
        return tasks.values.sorted { $0.task.id < $1.task.id }.map { entry in
            (view(entry, now: now), entry.peers.values.sorted { $0.id < $1.id }.map { peerView($0, entry, hosts: hosts, now: now) })
        }
    }

    private func view(_ entry: Entry, now: Date) -> Common_V2_PersistentCacheTask {
        var t = entry.task
        let live = entry.peers.values.filter { $0.state != .failed }
        t.currentPersistentReplicaCount = UInt64(live.filter { $0.persistent && $0.state == .succeeded }.count)
        t.currentReplicaCount = UInt64(live.filter { $0.state == .succeeded }.count)
        t.state = entry.state.rawValue
        t.createdAt = Self.timestamp(entry.createdAt)
        t.updatedAt = Self.timestamp(entry.peers.values.map(\.updatedAt).max() ?? entry.createdAt)
        return t
    }

    private func peerView(_ p: Peer, _ entry: Entry, hosts: [String: Common_V2_Host], now: Date) -> Common_V2_PersistentCachePeer {
        var v = Common_V2_PersistentCachePeer()
        v.id = p.id
        v.persistent = p.persistent
        v.state = p.state.rawValue
        v.cost = p.cost.map { Google_Protobuf_Duration($0) }
        v.task = view(entry, now: now)
        v.host = hosts[p.hostID]
        v.createdAt = Self.timestamp(p.createdAt)
        v.updatedAt = Self.timestamp(p.updatedAt)
        return v
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

/// The registry on disk, so a restarted scheduler still knows the tasks it keeps (upstream
/// keeps them in Redis). Written whole, at most every reconcile pass, when something changed.
extension PersistentCacheRegistry {
    struct Saved: Codable {
        struct Task: Codable {
            var id: String
            var replicaCount: UInt64
            var tag: String?
            var application: String?
            var pieceLength: UInt64
            var contentLength: UInt64
            var pieceCount: UInt32
            var ttlSeconds: Int64
            var state: String
            var createdAt: Date
            var peers: [Peer]
        }
        struct Peer: Codable {
            var id: String
            var hostID: String
            var persistent: Bool
            var state: String
            var createdAt: Date
            var updatedAt: Date
            var costSeconds: Double?
        }
        var version = 1
        var tasks: [Task]
    }

    /// The registry as JSON if it changed since the last call; nil otherwise.
    public func snapshotIfChanged() -> Data? {
        guard dirty else { return nil }
        dirty = false
        let saved = Saved(tasks: tasks.values.sorted { $0.task.id < $1.task.id }.map { e in
            Saved.Task(id: e.task.id, replicaCount: e.task.persistentReplicaCount, tag: e.task.tag, application: e.task.application,
                       pieceLength: e.task.pieceLength, contentLength: e.task.contentLength, pieceCount: e.task.pieceCount,
                       ttlSeconds: e.ttl.components.seconds, state: e.state.rawValue, createdAt: e.createdAt,
                       peers: e.peers.values.sorted { $0.id < $1.id }.map { p in
                           Saved.Peer(id: p.id, hostID: p.hostID, persistent: p.persistent, state: p.state.rawValue,
                                      createdAt: p.createdAt, updatedAt: p.updatedAt, costSeconds: p.cost?.seconds)
                       })
        })
        return try? JSONEncoder().encode(saved)
    }

    /// Loads what an earlier run saved; tasks past their TTL, and anything that does not
    /// parse or breaks the registry's bounds, are left out. Returns how many tasks it took.
    @discardableResult
    public func restore(_ data: Data, now: Date = Date()) -> Int {
        guard let saved = try? JSONDecoder().decode(Saved.self, from: data), saved.version == 1 else { return 0 }
        for t in saved.tasks.prefix(Self.maxTasks) {
            guard (try? Self.checkIDs(host: "h", task: t.id, peer: "p")) != nil, t.ttlSeconds >= 1,
                  t.ttlSeconds <= Self.maxTTL.components.seconds, t.pieceLength > 0,
                  let state = TaskState(rawValue: t.state) else { continue }
            var task = Common_V2_PersistentCacheTask()
            task.id = t.id
            task.persistentReplicaCount = t.replicaCount
            task.tag = t.tag
            task.application = t.application
            task.pieceLength = t.pieceLength
            task.contentLength = t.contentLength
            task.pieceCount = t.pieceCount
            task.ttl = Google_Protobuf_Duration(Duration.seconds(t.ttlSeconds))
            var entry = Entry(task: task, state: state, createdAt: t.createdAt, ttl: .seconds(t.ttlSeconds))
            guard !entry.expired(at: now) else { continue }
            for p in t.peers.prefix(Self.maxPeersPerTask) {
                guard let peerState = PeerState(rawValue: p.state) else { continue }
                entry.peers[p.id] = Peer(id: p.id, hostID: p.hostID, persistent: p.persistent, state: peerState,
                                         cost: p.costSeconds.map { .milliseconds(Int64(min(max($0, 0), 1e9) * 1000)) },
                                         createdAt: p.createdAt, updatedAt: p.updatedAt)
            }
            tasks[t.id] = entry
        }
        return tasks.count
    }
}
