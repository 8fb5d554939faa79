import ConnectionLimits
import HTTPServing
import Logging

/// `/metrics` (Prometheus text) and `/healthy`, which every component answers: the
/// scheduler on a metrics port of its own, the dfdaemon on its mirror's port.
public enum OperationalEndpoints {
    public static func routes(metrics: MetricsRegistry) -> StaticRoutes {
        StaticRoutes([
            "/metrics": { .init(contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.render()) },
            "/healthy": { .text("OK") },
        ])
    }

    /// Scrapers and probes need a few connections; a flood from one address is closed at
    /// accept, so it cannot use up the descriptors of the server these endpoints belong to.
    public static let maxConnectionsPerIP = 64

    /// Serves the routes on a listener of their own. A connection that sends no request for
    /// a minute is closed, as a kept-alive scraper that went quiet would hold it for ever.
    public static func start(host: String, port: Int, metrics: MetricsRegistry, logger: Logger) async throws -> HTTPListener {
        var limits = HTTPLimits()
        limits.requestTimeout = .seconds(60)
        limits.maxBodyBytes = 64 << 10
        return try await HTTPListener.start(host: host, port: port, responder: routes(metrics: metrics), limits: limits,
                                            admission: ConnectionGate(perIP: maxConnectionsPerIP, total: ConnectionGate.defaultTotal),
                                            logger: logger)
    }
}
