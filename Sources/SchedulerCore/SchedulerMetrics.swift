import DragonflyCommon
import Prometheus

/// The scheduler's metrics: Dragonfly's names under `dragonfly_scheduler_`, plus the two
/// the product spec names (`download_peer_total`, `download_piece_cost_seconds`).
public struct SchedulerMetrics: Sendable {
    public let registry: MetricsRegistry
    public let announcePeer: Counter
    public let announcePeerFailure: Counter
    public let announceHost: Counter
    public let listHosts: Counter
    public let leaveHost: Counter
    public let leavePeer: Counter
    public let leaveTask: Counter
    public let statPeer: Counter
    public let statTask: Counter
    public let concurrentSchedule: Gauge
    public let pieceCost: ValueHistogram
    public let scheduleDuration: ValueHistogram
    public let registerDuration: ValueHistogram

    public init(registry: MetricsRegistry) {
        self.registry = registry
        announcePeer = registry.counter("announce_peer_total", help: "AnnouncePeer streams opened")
        announcePeerFailure = registry.counter("announce_peer_failure_total", help: "AnnouncePeer streams ended with an error")
        announceHost = registry.counter("announce_host_total", help: "AnnounceHost calls")
        listHosts = registry.counter("list_hosts_total", help: "ListHosts calls")
        leaveHost = registry.counter("leave_host_total", help: "DeleteHost calls")
        leavePeer = registry.counter("leave_peer_total", help: "DeletePeer calls")
        leaveTask = registry.counter("leave_task_total", help: "DeleteTask calls")
        statPeer = registry.counter("stat_peer_total", help: "StatPeer calls")
        statTask = registry.counter("stat_task_total", help: "StatTask calls")
        // Upstream calls this gauge concurrent_schedule_total; a gauge must not end in
        // _total for promtool, so the suffix is dropped.
        concurrentSchedule = registry.gauge("concurrent_schedule", help: "AnnouncePeer streams open now")
        pieceCost = registry.secondsHistogram("download_piece_cost_seconds", buckets: MetricsRegistry.latencyBuckets,
                                              help: "Time peers took to download one piece")
        scheduleDuration = registry.secondsHistogram("schedule_duration_seconds", buckets: MetricsRegistry.latencyBuckets,
                                                     help: "Time to find and send parents for a peer")
        registerDuration = registry.secondsHistogram("register_peer_duration_seconds", buckets: MetricsRegistry.latencyBuckets,
                                                      help: "Time from register to the first scheduling answer")
    }

    /// Help texts of the counters made on first use, per label set.
    static let help: [String: String] = [
        "register_peer_total": "Peers registered",
        "download_peer_total": "Peers that started a download through this scheduler",
        "download_peer_started_total": "Peers that reported their download started",
        "download_peer_back_to_source_started_total": "Peers that started fetching from the origin",
        "download_peer_finished_total": "Peers that finished, successfully or not",
        "download_peer_finished_failure_total": "Peers whose download failed",
        "download_peer_back_to_source_finished_failure_total": "Peers whose origin fetch failed",
        "download_piece_finished_total": "Pieces reported, successfully or not",
        "download_piece_finished_failure_total": "Pieces that failed",
        "traffic_total": "Bytes of pieces reported, by where they came from",
    ]

    func counter(_ name: String, _ labels: [(String, String)]) -> Counter {
        registry.counter(name, labels, help: Self.help[name] ?? name)
    }

    func peerCounter(_ name: String, priority: String, taskType: String, hostType: String) -> Counter {
        counter(name, [("priority", priority), ("task_type", taskType), ("host_type", hostType)])
    }

    func pieceCounter(_ name: String, trafficType: String, taskType: String, hostType: String) -> Counter {
        counter(name, [("traffic_type", trafficType), ("task_type", taskType), ("host_type", hostType)])
    }

    /// Upstream's `traffic`, with the `_total` promtool expects of a counter.
    func traffic(type: String, taskType: String, hostType: String) -> Counter {
        counter("traffic_total", [("type", type), ("task_type", taskType), ("host_type", hostType)])
    }
}
