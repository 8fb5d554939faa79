import Prometheus

/// The process's metrics, rendered in the Prometheus text format for `/metrics`.
/// Counters and histograms with the same name and labels are the same series.
public final class MetricsRegistry: Sendable {
    public let prometheus = PrometheusCollectorRegistry()
    private let prefix: String

    /// `prefix` is `dragonfly_scheduler_`, `dragonfly_dfdaemon_` or `dragonfly_manager_`.
    public init(prefix: String) {
        self.prefix = prefix
    }

    public func counter(_ name: String, _ labels: [(String, String)] = [], help: String = "") -> Counter {
        if labels.isEmpty { return prometheus.makeCounter(name: prefix + name, help: help) }
        return prometheus.makeCounter(name: prefix + name, labels: labels, help: help)
    }

    public func gauge(_ name: String, _ labels: [(String, String)] = [], help: String = "") -> Gauge {
        if labels.isEmpty { return prometheus.makeGauge(name: prefix + name, help: help) }
        return prometheus.makeGauge(name: prefix + name, labels: labels, help: help)
    }

    /// A histogram in seconds.
    public func secondsHistogram(_ name: String, buckets: [Double], _ labels: [(String, String)] = [],
                                 help: String = "") -> ValueHistogram {
        prometheus.makeValueHistogram(name: prefix + name, labels: labels, buckets: buckets, help: help)
    }

    public func render() -> [UInt8] { prometheus.emitToBuffer() }

    /// Buckets from 1 ms to about 2 minutes, for durations in seconds.
    public static let latencyBuckets: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]
}
