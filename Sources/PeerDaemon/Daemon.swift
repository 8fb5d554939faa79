import DragonflyCommon
import DragonflyRPC
import Foundation
import GeneratedAPI
import Logging
import PeerStorage
import RPCCore
import RPCTransport
import Locking

/// One piece finished, for the caller's progress stream.
public typealias PieceReport = @Sendable (Common_V2_Piece) async throws -> Void

/// The peer: fetches tasks (from parents the scheduler names, or the origin), keeps their
/// pieces, and serves them to others. Falls back to the origin whenever Dragonfly fails.
public final class Daemon: Sendable {
    public let config: DaemonConfig
    public let store: PieceStore
    let origin: OriginClient
    let logger: Logger
    public let metrics: MetricsRegistry
    /// Connections to schedulers and parents. Pieces go up to 64 MiB; gRPC's 4 MiB default
    /// would refuse them.
    private let channels: RPCChannelPool
    /// At most one fetch per task; concurrent requests for it follow the same one.
    let inflight = Locked<[String: FetchJob]>([:])
    /// Persistent cache tasks being fetched from peers now, with how many callers follow each.
    let persistentFetches = Locked<[String: Int]>([:])
    /// Length-less origin bodies being read now, one per task.
    let spools = SpoolRegistry()
    /// Pieces handed to children, per task (`StatLocalTask`).
    let uploadCounts = UploadCounts()
    /// Bytes by source, in total and per task, kept in `stats.json`.
    public let stats: TrafficStats
    /// Upload streams and connections being served now, by child host (its IP address):
    /// `upload.concurrentLimit` counts the hosts.
    let uploadsByChild = Locked<[String: Int]>([:])
    /// One budget for every upload (`upload.rateLimit`).
    let uploadLimit: TokenBucket
    let downloadLimit: TokenBucket
    /// Bytes moved, for the load this host announces.
    let traffic = TrafficMeter()
    let backToSourceLimit: TokenBucket
    /// The port other peers reach us on; known once the server has bound (port 0 picks one).
    private let boundPort = Locked<Int?>(nil)
    /// The schedulers in use: the configured ones, or those the manager names.
    let schedulerList: Locked<[String]>

    public var schedulers: [String] { schedulerList.withLock { $0 } }

    /// The Vortex server's port, advertised to children in SyncPieces; nil when it is off.
    private let vortexListenPort = Locked<Int?>(nil)

    public func setBoundPort(_ port: Int) { boundPort.withLock { $0 = port } }
    public func setVortexPort(_ port: Int) { vortexListenPort.withLock { $0 = port } }
    var vortexPort: Int? { vortexListenPort.withLock { $0 } }
    var advertisedPort: Int { boundPort.withLock { $0 } ?? config.port }

    public init(config: DaemonConfig, store: PieceStore, origin: OriginClient = OriginClient(),
                metrics: MetricsRegistry, logger: Logger = Logger(label: "dfdaemon")) {
        let tls = config.tls.client
        channels = RPCChannelPool { c in
            c.connectTimeout = .seconds(3)
            c.maxReceiveMessageSize = 80 << 20
            c.secure(with: tls)
        }
        self.config = config
        self.store = store
        self.stats = TrafficStats(directory: store.directory)
        self.origin = origin
        self.metrics = metrics
        self.logger = logger
        self.downloadLimit = TokenBucket(bytesPerSecond: config.totalDownloadRateLimit)
        self.uploadLimit = TokenBucket(bytesPerSecond: config.uploadRateLimit)
        self.backToSourceLimit = TokenBucket(bytesPerSecond: config.backToSourceRateLimit)
        self.schedulerList = Locked(config.schedulers)
    }

    var hostID: String { config.hostID }

    /// What the scheduler is told about this host.
    public var hostInfo: Common_V2_Host {
        Common_V2_Host.with { h in
            h.id = hostID
            h.type = config.seedPeer ? 1 : 0
            h.hostname = config.hostname
            h.ip = config.ip
            h.port = Int32(advertisedPort)
            h.downloadPort = Int32(advertisedPort)
            h.network = Common_V2_Network.with { n in
                n.idc = config.idc.isEmpty ? nil : config.idc
                n.location = config.location.isEmpty ? nil : config.location
                // The scheduler's evaluator weighs parents by this load (60 % of the score).
                let rates = traffic.rates()
                n.maxTxBandwidth = UInt64(min(config.uploadBandwidth ?? (config.uploadRateLimit > 0 ? config.uploadRateLimit * 8 : 10e9), 1e15))
                n.txBandwidth = rates.txBitsPerSecond
                n.rxBandwidth = rates.rxBitsPerSecond
                let uploads = uploadsByChild.withLock { $0.values.reduce(0, +) }
                n.uploadTcpConnectionCount = UInt32(clamping: uploads)
                n.tcpConnectionCount = UInt32(clamping: uploads)
            }
        }
    }

    /// Counts a piece that arrived: bytes by source (`peer` or `back_to_source`), pieces, and
    /// how long it took.
    func recordPiece(source: String, bytes: Int, cost: Duration, task: String) {
        stats.record(source == "peer" ? .peer : .origin, bytes: bytes, task: task)
        traffic.received(bytes)
        metrics.counter("download_traffic_total", [("type", source)], help: "Bytes downloaded, by source").increment(by: Int64(bytes))
        metrics.counter("download_piece_total", [("type", source)], help: "Pieces downloaded, by source").increment()
        let seconds = Double(cost.components.seconds) + Double(cost.components.attoseconds) / 1e18
        metrics.secondsHistogram("download_piece_cost_seconds", buckets: MetricsRegistry.latencyBuckets,
                                 help: "Time to download one piece").record(seconds)
    }

    /// A piece from a parent, by how its bytes came: `stream` (our piece stream) or `vortex`.
    func recordParentPiece(transport: String) {
        metrics.counter("parent_piece_total", [("transport", transport)], help: "Pieces fetched from parents, by transport").increment()
    }

    func channel(_ address: String) throws -> RPCChannel { try channels.channel(address) }

    /// The scheduler for a task: rendezvous hashing over the cluster's schedulers, so one
    /// task always meets the same scheduler on every peer, and a scheduler joining or
    /// leaving moves only the tasks it gains or had.
    func scheduler(for taskID: String) -> String? {
        Daemon.scheduler(for: taskID, among: schedulers)
    }

    public static func scheduler(for taskID: String, among schedulers: [String]) -> String? {
        schedulers.max { fnv(taskID + $0) < fnv(taskID + $1) }
    }

    /// Tells the schedulers this host is gone, so no one is sent here for pieces.
    public func leave() async {
        for address in schedulers {
            guard let transport = try? channel(address) else { continue }
            let client = Scheduler_V2_SchedulerClient(RPCClient(transport: transport))
            _ = try? await client.deleteHost(Scheduler_V2_DeleteHostRequest.with { $0.hostId = hostID },
                                             options: CallOptions(timeout: .seconds(2)))
        }
    }

    public func close() async {
        await channels.closeAll()
        await origin.shutdown()
    }

    /// Announces this host to every scheduler, then again every interval, until cancelled.
    public func announceHost() async {
        while !Task.isCancelled {
            await announceHostOnce()
            try? await Task.sleep(for: config.announceInterval)
        }
    }

    func announceHostOnce() async {
        for address in schedulers { await announceHost(to: address) }
    }

    func announceHost(to address: String) async {
        do {
            let client = Scheduler_V2_SchedulerClient(RPCClient(transport: try channel(address)))
            var r = Scheduler_V2_AnnounceHostRequest()
            r.host = hostInfo
            r.interval = Google_Protobuf_Duration(config.announceInterval)
            _ = try await client.announceHost(r, options: CallOptions(timeout: .seconds(5)))
        } catch {
            logger.debug("announcing host to \(address) failed: \(error)")
        }
    }
}

func fnv(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf29ce484222325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
    return h
}

extension Common_V2_Piece {
    init(_ p: TaskMetadata.Piece, traffic: Common_V2_TrafficType?, cost: Duration? = nil) {
        self.init()
        number = p.number
        offset = p.offset
        length = p.length
        digest = p.digest
        parentId = p.parentID
        trafficType = traffic
        self.cost = cost.map { Google_Protobuf_Duration($0) }
        createdAt = .now()
    }
}
