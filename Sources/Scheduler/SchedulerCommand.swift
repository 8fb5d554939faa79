import ArgumentParser
import CLICommon
import DragonflyCommon
import Foundation
import Logging
import ManagerClient
import RPCServices
import RPCTransport
import SchedulerCore
import SchedulerService

@main
struct SchedulerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler",
        abstract: "Dragonfly scheduler: tells every peer of every task whom to download from.",
        discussion: "Serves scheduler.v2.Scheduler (with health and reflection) over gRPC, and /metrics and /healthy over HTTP.")

    @Option(help: "YAML config file (Dragonfly's scheduler keys).")
    var config: String?
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
    @Option(help: "Directory for the scheduler's files (server.dataDir).")
    var dataDir: String?
    @OptionGroup var log: LogOptions

    @OptionGroup var tls: TLSOptions

    func run() async throws {
        try log.bootstrap()
        var c = try config.map { try SchedulerConfig.load(path: $0) } ?? SchedulerConfig()
        if let port { c.port = port }
        if let listenIP { c.listenIP = listenIP; c.metricsIP = listenIP }
        if let advertiseIP { c.advertiseIP = advertiseIP }
        if let metricsPort { c.metricsPort = metricsPort }
        if let manager { c.managerAddress = manager }
        if let dataDir { c.dataDir = dataDir }
        c.tls = try tls.applied(to: c.tls)
        try c.validate()
        try FileManager.default.createDirectory(atPath: c.dataDir, withIntermediateDirectories: true)
        let logger = Logger(label: "scheduler")

        let metrics = SchedulerMetrics(registry: MetricsRegistry(prefix: "dragonfly_scheduler_"))
        PrometheusMetricsBridge.bootstrap(metrics.registry, help: RPCServerMetrics.help)
        let engine = SchedulerEngine(settings: c.settings, metrics: metrics, logger: logger)
        let seeds = SeedPeerClient(tls: c.tls.client)
        await engine.setSeedDownloader { await seeds.download($0) }
        let service = SchedulerRPCService(engine: engine, settings: c.settings, metrics: metrics)
        let (_, services) = StandardServices.make(for: [service, SchedulerInspectService(engine: engine)])
        let server = RPCServer(services: services,
                               configuration: RPCServerConfiguration(address: .tcp(host: c.listenIP, port: c.port), tls: c.tls.server)
                                   .limited(by: c.rpcLimits),
                               logger: logger)
        let grpcPort = try await server.start()
        let http = HTTPEndpointServer.operational(metrics: metrics.registry)
        let httpPort = try await http.start(host: c.metricsIP, port: c.metricsPort)
        logger.info("scheduler serving gRPC on \(c.listenIP):\(grpcPort), metrics on \(c.metricsIP):\(httpPort)")
        print("LISTENING \(grpcPort) METRICS \(httpPort)")
        fflush(nil)

        let gc = Task { await engine.runGarbageCollection() }
        let announcer = c.managerAddress.map { address in
            ManagerAnnouncer(address: address, identity: .init(
                hostname: c.hostname, ip: c.advertiseIP, idc: c.idc, location: c.location, clusterID: c.schedulerClusterID,
                role: .scheduler(port: Int32(c.advertisePort ?? grpcPort))),
                interval: c.keepAliveInterval, tls: c.tls.client)
        }.map { a in Task { await a.run() } }
        await server.runUntilTerminated()
        gc.cancel()
        announcer?.cancel()
        await http.stop()
        await seeds.close()
    }
}
