import CoreMetrics
import Prometheus

/// swift-metrics → swift-prometheus, with help texts. swift-prometheus's own factory
/// registers every metric without `# HELP`, which `promtool check metrics` reports; libraries
/// that emit through swift-metrics (our RPC layer) publish their help texts instead, and
/// the executable passes them here when it bootstraps the metrics system.
public struct PrometheusMetricsBridge: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    let help: [String: String]
    let durationBuckets: [Duration]

    public init(registry: MetricsRegistry, help: [String: String]) {
        self.registry = registry.prometheus
        self.help = help
        durationBuckets = MetricsRegistry.latencyBuckets.map { Duration.milliseconds(Int64(($0 * 1000).rounded())) }
    }

    /// Installs the bridge as the process's metrics backend; call once, at start-up.
    public static func bootstrap(_ registry: MetricsRegistry, help: [String: String]) {
        MetricsSystem.bootstrap(PrometheusMetricsBridge(registry: registry, help: help))
    }

    func helpText(_ label: String) -> String { help[label] ?? label.replacingOccurrences(of: "_", with: " ") }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(name: label, labels: dimensions, help: helpText(label))
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(name: label, labels: dimensions, help: helpText(label))
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        if !aggregate { return registry.makeGauge(name: label, labels: dimensions, help: helpText(label)) }
        let descriptor = MetricNameDescriptor(metricName: label, unitName: "", helpText: helpText(label))
        return registry.makeValueHistogram(descriptor: descriptor, labels: dimensions, buckets: MetricsRegistry.latencyBuckets)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(name: label, labels: dimensions, help: helpText(label))
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let descriptor = MetricNameDescriptor(metricName: label, unitName: "", helpText: helpText(label))
        return registry.makeDurationHistogram(descriptor: descriptor, labels: dimensions, buckets: durationBuckets)
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let c = handler as? Prometheus.Counter { registry.unregisterCounter(c) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let c = handler as? Prometheus.Counter { registry.unregisterCounter(c) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        if let g = handler as? Prometheus.Gauge { registry.unregisterGauge(g) }
        if let h = handler as? ValueHistogram { registry.unregisterValueHistogram(h) }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let g = handler as? Prometheus.Gauge { registry.unregisterGauge(g) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let h = handler as? DurationHistogram { registry.unregisterDurationHistogram(h) }
    }
}
