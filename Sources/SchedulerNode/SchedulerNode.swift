import DragonflyCommon
import DragonflyRPC
import HTTPServing
import Foundation
import Logging
import ServiceLifecycle
import ManagerClient
import RPCServices
import RPCTransport
import SchedulerCore
import SchedulerService

/// A running scheduler: gRPC, /metrics and /healthy, garbage collection and, with a
/// manager address, registration and keep-alive with the manager.
public final class SchedulerNode: Service {
    public let grpcPort: Int
    public let metricsPort: Int
    private let server: RPCServer
    private let http: HTTPListener
    private let engine: SchedulerEngine
    private let seeds: SeedPeerClient
    private let preheats: SchedulerPreheat
    /// Persistent cache tasks and persistent tasks, each kept at its replica count.
    private let keepers: [ReplicaKeeper]
    private let announcer: ManagerAnnouncer?
    private let logger: Logger

    /// Binds both ports. `registry` receives the scheduler's series (`dragonfly_scheduler_…`).
    public static func start(_ c: SchedulerConfig, registry: MetricsRegistry, logger: Logger) async throws -> SchedulerNode {
        try c.validate()
        try FileManager.default.createDirectory(atPath: c.dataDir, withIntermediateDirectories: true)
        let metrics = SchedulerMetrics(registry: registry)
        let engine = SchedulerEngine(settings: c.settings, metrics: metrics, logger: logger)
        let seeds = SeedPeerClient(tls: c.tls.client)
        await engine.setSeedDownloader { await seeds.download($0) }
        let secret = c.managerRegistrationSecret ?? ProcessInfo.processInfo.environment[ManagerAnnouncer.registrationSecretVariable]
        let access = PreheatAccess(secret: secret, mutualTLS: c.tls.server?.requireClientCertificate == true)
        let preheats = SchedulerPreheat(engine: engine, access: access, tls: c.tls.client, logger: logger)
        let persistentCache = ReplicaKeeper(.persistentCache, engine: engine, access: access, secret: secret, tls: c.tls.client,
                                            candidateParentLimit: c.settings.candidateParentLimit, dataDir: c.dataDir, logger: logger)
        let persistentTasks = ReplicaKeeper(.persistent, engine: engine, access: access, secret: secret, tls: c.tls.client,
                                            candidateParentLimit: c.settings.candidateParentLimit, dataDir: c.dataDir, logger: logger)
        await persistentCache.restore()
        await persistentTasks.restore()
        let service = SchedulerRPCService(engine: engine, settings: c.settings, metrics: metrics, preheats: preheats,
                                          persistentCache: persistentCache, persistentTasks: persistentTasks)
        let (_, services) = StandardServices.make(for: [service, SchedulerInspectService(engine: engine, persistentCache: persistentCache.registry)])
        let server = RPCServer(services: services,
                               configuration: RPCServerConfiguration(address: .tcp(host: c.listenIP, port: c.port), tls: c.tls.server)
                                   .limited(by: c.rpcLimits),
                               logger: logger)
        let grpcPort = try await server.start()
        let http: HTTPListener
        do {
            http = try await OperationalEndpoints.start(host: c.metricsIP, port: c.metricsPort, metrics: registry, logger: logger)
        } catch {
            await server.shutdownGracefully(timeout: .seconds(1))
            throw error
        }
        let metricsPort = http.port
        logger.info("scheduler serving gRPC on \(c.listenIP):\(grpcPort), metrics on \(c.metricsIP):\(metricsPort)")
        let announcer = c.managerAddress.map { address in
            ManagerAnnouncer(address: address, identity: .init(
                hostname: c.hostname, ip: c.advertiseIP, idc: c.idc, location: c.location, clusterID: c.schedulerClusterID,
                role: .scheduler(port: Int32(c.advertisePort ?? grpcPort))),
                interval: c.keepAliveInterval, tls: c.tls.client, registrationSecret: c.managerRegistrationSecret)
        }
        return SchedulerNode(grpcPort: grpcPort, metricsPort: metricsPort, server: server, http: http, engine: engine,
                             seeds: seeds, preheats: preheats, keepers: [persistentCache, persistentTasks], announcer: announcer, logger: logger)
    }

    private init(grpcPort: Int, metricsPort: Int, server: RPCServer, http: HTTPListener, engine: SchedulerEngine,
                 seeds: SeedPeerClient, preheats: SchedulerPreheat, keepers: [ReplicaKeeper],
                 announcer: ManagerAnnouncer?, logger: Logger) {
        self.keepers = keepers
        self.grpcPort = grpcPort
        self.metricsPort = metricsPort
        self.server = server
        self.http = http
        self.engine = engine
        self.seeds = seeds
        self.preheats = preheats
        self.announcer = announcer
        self.logger = logger
    }

    /// Serves until a graceful shutdown (SIGTERM or SIGINT in a `ServiceGroup`) or until the
    /// calling task is cancelled.
    public func run() async throws {
        let gc = Task { [engine] in await engine.runGarbageCollection() }
        let replicas = keepers.map { keeper in Task { await keeper.run() } }
        let registration = announcer.map { a in Task { await a.run() } }
        let server = server
        await cancelWhenGracefulShutdown { await server.runUntilCancelled() }
        gc.cancel()
        replicas.forEach { $0.cancel() }
        for keeper in keepers { await keeper.shutdown() }
        registration?.cancel()
        await http.stop()
        await seeds.close()
        await preheats.shutdown()
        logger.info("scheduler stopped")
    }
}
