import ArgumentParser
import CLICommon
import DragonflyCommon
import Foundation
import Logging
import RPCTransport
import SchedulerNode
import SchedulerService

@main
struct SchedulerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler",
        abstract: "Dragonfly scheduler: tells every peer of every task whom to download from.",
        discussion: "Serves scheduler.v2.Scheduler (with health and reflection) over gRPC, and /metrics and /healthy over HTTP.")

    @Option(help: "YAML config file (Dragonfly's scheduler keys).")
    var config: String?
    @Flag(help: "Load and check the config file, print `config OK` and exit.")
    var checkConfig = false
    @Option(help: "gRPC port (server.port, default 65002).")
    var port: Int?
    @Option(help: "Address to listen on (server.listenIP, default 0.0.0.0).")
    var listenIP: String?
    @Option(help: "IP announced to the manager and peers (server.advertiseIP).")
    var advertiseIP: String?
    @Option(help: "Port of /metrics and /healthy (metrics.addr, default 8002).")
    var metricsPort: Int?
    @Option(help: "Manager gRPC address host:port (manager.addr); without it the scheduler runs standalone.")
    var manager: String?
    @Option(help: "Secret the manager requires to register (manager.registrationSecret; default $DRAGONFLY_REGISTRATION_SECRET).")
    var registrationSecret: String?
    @Option(help: "Directory for the scheduler's files (server.dataDir).")
    var dataDir: String?
    @OptionGroup var log: LogOptions

    @OptionGroup var tls: TLSOptions

    func run() async throws {
        var c = try config.map { try SchedulerConfig.load(path: $0) } ?? SchedulerConfig()
        if checkConfig { return ConfigCheck.passed() }
        try log.bootstrap()
        if let port { c.port = port }
        if let listenIP { c.listenIP = listenIP; c.metricsIP = listenIP }
        if let advertiseIP { c.advertiseIP = advertiseIP }
        if let metricsPort { c.metricsPort = metricsPort }
        if let manager { c.managerAddress = manager }
        if let registrationSecret { c.managerRegistrationSecret = registrationSecret }
        if let dataDir { c.dataDir = dataDir }
        c.tls = try tls.applied(to: c.tls)

        let registry = MetricsRegistry(prefix: "dragonfly_scheduler_")
        PrometheusMetricsBridge.bootstrap(registry, help: RPCServerMetrics.help)
        let logger = Logger(label: "scheduler")
        let node = try await SchedulerNode.start(c, registry: registry, logger: logger)
        print("LISTENING \(node.grpcPort) METRICS \(node.metricsPort)")
        fflush(nil)
        try await ProcessLifecycle.run([node], logger: logger)
    }
}
