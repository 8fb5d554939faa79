import DragonflyCommon
import Foundation
import GeneratedAPI

/// The registry on disk, so a restarted scheduler still knows the tasks it keeps (upstream
/// keeps them in Redis). Written whole, at most every reconcile pass, when something changed.
extension ReplicaRegistry {
    struct Saved: Codable {
        struct Task: Codable {
            var id: String
            var replicaCount: UInt64
            var tag: String?
            var application: String?
            var url: String?
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
        let saved = Saved(tasks: tasks.values.sorted { $0.task.id < $1.task.id }.map(Self.saved))
        return try? JSONEncoder().encode(saved)
    }

    private static func saved(_ e: Entry) -> Saved.Task {
        let peers = e.peers.values.sorted { $0.id < $1.id }.map { p in
            Saved.Peer(id: p.id, hostID: p.hostID, persistent: p.persistent, state: p.state.rawValue,
                       createdAt: p.createdAt, updatedAt: p.updatedAt, costSeconds: p.cost?.seconds)
        }
        return Saved.Task(id: e.task.id, replicaCount: e.task.replicaCount, tag: e.task.tag, application: e.task.application,
                          url: e.task.url, pieceLength: e.task.pieceLength, contentLength: e.task.contentLength,
                          pieceCount: e.task.pieceCount, ttlSeconds: e.ttl.components.seconds, state: e.state.rawValue,
                          createdAt: e.createdAt, peers: peers)
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
            let task = KeptTask(id: t.id, replicaCount: t.replicaCount, tag: t.tag, application: t.application, url: t.url,
                                pieceLength: t.pieceLength, contentLength: t.contentLength, pieceCount: t.pieceCount,
                                ttl: .seconds(t.ttlSeconds))
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
