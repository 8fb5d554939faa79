import DragonflyCommon
import Foundation
import GeneratedAPI
import Logging
import ManagerCore
import Prometheus
import RPCCore
import RPCTransport

/// Live state of a scheduler cluster, asked of its active schedulers: the hosts they know
/// (scheduler.v2 `ListHosts`) and their tasks with each peer's progress (our
/// `SchedulerInspect`). It also keeps the manager's peer metrics, which upstream fills
/// from its peer-sync job.
public actor ClusterInspector {
    let store: ManagerStore
    let logger: Logger
    let channels: RPCChannelPool
    let peerTotal: Counter
    let peersNow: Gauge
    /// Host ids seen so far, so `peer_total` counts each peer once.
    var seen: Set<String> = []

    public init(store: ManagerStore, metrics: MetricsRegistry, tls: TLSConfiguration? = nil, logger: Logger) {
        self.store = store
        self.logger = logger
        channels = RPCChannelPool { config in
            config.connectTimeout = .seconds(3)
            if case .tcp = config.target { config.tls = tls }
        }
        peerTotal = metrics.counter("peer_total", help: "Peers (dfdaemon hosts) the manager has seen through its schedulers")
        peersNow = metrics.gauge("peers", help: "Peers the active schedulers know now")
    }

    public struct HostView: Codable, Sendable {
        var id: String
        var hostname: String
        var ip: String
        var port: Int32
        var download_port: Int32
        var type: String
        var os: String
        var platform: String
        var idc: String?
        var location: String?
        var disk_used_percent: Double?
        var version: String?
        var scheduler: String
    }

    public struct PeerView: Codable, Sendable {
        var id: String
        var host_id: String
        var hostname: String
        var ip: String
        var state: String
        var finished_pieces: UInt32
        var back_to_source: Bool
        var updated_at: Date?
    }

    public struct TaskView: Codable, Sendable {
        var id: String
        var url: String
        var state: String
        var content_length: UInt64
        var piece_count: UInt32
        var peers: [PeerView]
        var created_at: Date?
        var updated_at: Date?
        var scheduler: String
    }

    public struct ReplicaView: Codable, Sendable {
        var peer_id: String
        var host_id: String
        var hostname: String
        var ip: String
        var persistent: Bool
        var state: String
        var updated_at: Date?
    }

    public struct PersistentCacheTaskView: Codable, Sendable {
        var id: String
        var state: String
        var content_length: UInt64
        var piece_length: UInt64
        var piece_count: UInt32
        var persistent_replica_count: UInt64
        var current_persistent_replica_count: UInt64
        var ttl_seconds: Int64
        var tag: String
        var application: String
        var replicas: [ReplicaView]
        var created_at: Date?
        var updated_at: Date?
        var scheduler: String
    }

    /// The persistent cache tasks (dfcache imports) the cluster's schedulers keep, by id.
    public func persistentCacheTasks(clusterID: UInt64) async throws -> [PersistentCacheTaskView] {
        var views: [PersistentCacheTaskView] = []
        for scheduler in try await store.activeSchedulers(clusterID: clusterID) {
            guard let channel = try? channels.channel(Self.address(scheduler)) else { continue }
            let inspect = Dfswift_Scheduler_V1_SchedulerInspectClient(RPCClient(transport: channel))
            guard let answer = try? await inspect.listPersistentCacheTasks(Dfswift_Scheduler_V1_ListPersistentCacheTasksRequest(),
                                                                           options: Self.options) else { continue }
            views += answer.tasks.map { t in
                PersistentCacheTaskView(
                    id: t.id, state: t.state, content_length: t.contentLength, piece_length: t.pieceLength, piece_count: t.pieceCount,
                    persistent_replica_count: t.persistentReplicaCount, current_persistent_replica_count: t.currentPersistentReplicaCount,
                    ttl_seconds: t.ttlSeconds, tag: t.tag, application: t.application,
                    replicas: t.replicas.map { r in
                        ReplicaView(peer_id: r.peerId, host_id: r.hostId, hostname: r.hostname, ip: r.ip, persistent: r.persistent,
                                    state: r.state, updated_at: Self.date(r.updatedAt))
                    },
                    created_at: Self.date(t.createdAt), updated_at: Self.date(t.updatedAt), scheduler: scheduler.hostname)
            }
        }
        return views.sorted { $0.id < $1.id }
    }

    /// Every host the cluster's active schedulers know, each once.
    public func hosts(clusterID: UInt64) async throws -> [HostView] {
        var views: [String: HostView] = [:]
        for scheduler in try await store.activeSchedulers(clusterID: clusterID) {
            guard let channel = try? channels.channel(Self.address(scheduler)) else { continue }
            let client = Scheduler_V2_SchedulerClient(RPCClient(transport: channel))
            guard let answer = try? await client.listHosts(Scheduler_V2_ListHostsRequest(), options: Self.options) else { continue }
            for host in answer.hosts where views[host.id] == nil {
                views[host.id] = Self.view(host, scheduler: scheduler.hostname)
            }
        }
        record(Set(views.keys))
        return views.values.sorted { ($0.hostname, $0.id) < ($1.hostname, $1.id) }
    }

    /// The cluster's tasks, most recently updated first.
    public func tasks(clusterID: UInt64, limit: UInt32) async throws -> [TaskView] {
        var views: [TaskView] = []
        for scheduler in try await store.activeSchedulers(clusterID: clusterID) {
            guard let channel = try? channels.channel(Self.address(scheduler)) else { continue }
            var request = Dfswift_Scheduler_V1_ListTasksRequest()
            request.limit = limit
            let inspect = Dfswift_Scheduler_V1_SchedulerInspectClient(RPCClient(transport: channel))
            guard let answer = try? await inspect.listTasks(request, options: Self.options) else { continue }
            views += answer.tasks.map { Self.view($0, scheduler: scheduler.hostname) }
        }
        return views.sorted { ($0.updated_at ?? .distantPast) > ($1.updated_at ?? .distantPast) }
    }

    /// Refreshes the peer metrics from every cluster, as a periodic job.
    public func syncPeers(every interval: Duration) async {
        while !Task.isCancelled {
            var all: Set<String> = []
            for cluster in (try? await store.allSchedulerClusters()) ?? [] {
                for host in (try? await hosts(clusterID: cluster.id)) ?? [] { all.insert(host.id) }
            }
            peersNow.set(Double(all.count))
            try? await Task.sleep(for: interval)
        }
    }

    func record(_ ids: Set<String>) {
        let new = ids.subtracting(seen)
        if !new.isEmpty { peerTotal.increment(by: Int64(new.count)) }
        seen.formUnion(new)
    }

    static let options = CallOptions(timeout: .seconds(5))

    static func address(_ s: SchedulerRecord) -> String {
        s.ip.contains(":") ? "[\(s.ip)]:\(s.port)" : "\(s.ip):\(s.port)"
    }

    static func date(_ t: Google_Protobuf_Timestamp?) -> Date? {
        t.map { Date(timeIntervalSince1970: Double($0.seconds) + Double($0.nanos) / 1e9) }
    }

    /// Dragonfly's host types: 0 a normal peer, then the three kinds of seed peer.
    static let hostTypes = ["normal", "super", "strong", "weak"]

    static func view(_ h: Common_V2_Host, scheduler: String) -> HostView {
        let type = hostTypes.indices.contains(Int(h.type)) ? hostTypes[Int(h.type)] : "type \(h.type)"
        return HostView(id: h.id, hostname: h.hostname, ip: h.ip, port: h.port, download_port: h.downloadPort, type: type,
                        os: h.os, platform: h.platform, idc: h.network?.idc, location: h.network?.location,
                        disk_used_percent: h.disk?.usedPercent, version: h.build?.gitVersion, scheduler: scheduler)
    }

    static func view(_ t: Dfswift_Scheduler_V1_TaskSummary, scheduler: String) -> TaskView {
        let peers = t.peers.map {
            PeerView(id: $0.id, host_id: $0.hostId, hostname: $0.hostname, ip: $0.ip, state: $0.state,
                     finished_pieces: $0.finishedPieceCount, back_to_source: $0.backToSource, updated_at: date($0.updatedAt))
        }
        // Anyone signed in sees this list, and a task's URL can be a presigned one.
        return TaskView(id: t.id, url: LogRedaction.maskingCredentials(inURL: t.url), state: t.state, content_length: t.contentLength, piece_count: t.pieceCount,
                        peers: peers, created_at: date(t.createdAt), updated_at: date(t.updatedAt), scheduler: scheduler)
    }
}
