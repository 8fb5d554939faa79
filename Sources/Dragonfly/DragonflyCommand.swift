import ArgumentParser
import CLICommon
import DragonflyCommon
import Foundation
import Logging
import ManagerNode
import PeerNode
import RPCTransport
import SchedulerNode

@main
struct DragonflyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dragonfly",
        abstract: "Dragonfly in one binary.",
        subcommands: [AllInOne.self])
}

/// The manager (SQLite), a scheduler, a seed peer and a dfdaemon in one process, for one
/// machine or the edge: no MySQL, no Redis, one config file.
struct AllInOne: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all-in-one",
        abstract: "Run the manager, a scheduler, a seed peer and a dfdaemon in one process.",
        discussion: """
        The config has a section per component with that component's own keys: manager, scheduler, seedPeer, \
        dfdaemon (see docker/all-in-one.yaml). The scheduler and the seed peer register with the manager, as in a \
        cluster, and both peers use the scheduler. Ports default to the stand-alone ones \
        (manager 65003 and 8080, scheduler 65002 and 8002, dfdaemon 65001), the seed peer's to 65006.
        """)

    @Option(help: "YAML config file with manager, scheduler, seedPeer and dfdaemon sections.")
    var config: String?
    @Flag(help: "Load and check the config file, print `config OK` and exit.")
    var checkConfig = false
    @Option(help: "Directory under which each component keeps its files (dataDir, default /var/lib/dragonfly).")
    var dataDir: String?
    @OptionGroup var log: LogOptions

    func run() async throws {
        var c = try AllInOneConfig.load(path: config, dataDir: dataDir)
        if checkConfig { return ConfigCheck.passed() }
        try log.bootstrap()

        // swift-metrics has one backend per process: the gRPC server series of all four
        // servers go to the dfdaemon's /metrics, told apart by their grpc_service label.
        let peerMetrics = MetricsRegistry(prefix: "dragonfly_dfdaemon_")
        PrometheusMetricsBridge.bootstrap(peerMetrics, help: RPCServerMetrics.help)

        // The scheduler and seed peer in here must register, and nothing else should: with
        // no secret given, one is made for this process alone. A given one (key or
        // $DRAGONFLY_REGISTRATION_SECRET) lets schedulers elsewhere join this manager too.
        if c.manager.registrationSecret == nil, !c.manager.openRegistration {
            let given = ProcessInfo.processInfo.environment[ManagerConfig.registrationSecretVariable].flatMap { $0.isEmpty ? nil : $0 }
            c.manager.registrationSecret = given ?? Secrets.hex(Secrets.randomBytes(32))
        }
        if c.scheduler.managerRegistrationSecret == nil { c.scheduler.managerRegistrationSecret = c.manager.registrationSecret }
        if c.seedPeer.managerRegistrationSecret == nil { c.seedPeer.managerRegistrationSecret = c.manager.registrationSecret }
        let manager = try await ManagerNode.start(c.manager, metrics: MetricsRegistry(prefix: "dragonfly_manager_"),
                                                  logger: Logger(label: "manager"))
        let managerAddress = AllInOneConfig.localAddress(c.manager.listenIP, manager.grpcPort)
        c.scheduler.managerAddress = managerAddress
        let scheduler = try await SchedulerNode.start(c.scheduler, registry: MetricsRegistry(prefix: "dragonfly_scheduler_"),
                                                      logger: Logger(label: "scheduler"))
        // The peers are handed the scheduler rather than left to find it through the
        // manager: the scheduler's first keep-alive may land after their first question.
        let schedulerAddress = AllInOneConfig.localAddress(c.scheduler.listenIP, scheduler.grpcPort)
        for peer in [\AllInOneConfig.seedPeer, \AllInOneConfig.dfdaemon] {
            c[keyPath: peer].managerAddress = managerAddress
            if c[keyPath: peer].schedulers.isEmpty { c[keyPath: peer].schedulers = [schedulerAddress] }
        }
        let seedPeer = try await PeerNode.start(c.seedPeer, metrics: MetricsRegistry(prefix: "dragonfly_seed_peer_"),
                                                logger: Logger(label: "seed-peer"))
        let dfdaemon = try await PeerNode.start(c.dfdaemon, metrics: peerMetrics, logger: Logger(label: "dfdaemon"))
        print("LISTENING \(dfdaemon.port) MANAGER \(manager.grpcPort) REST \(manager.restPort) " +
              "SCHEDULER \(scheduler.grpcPort) SCHEDULER_METRICS \(scheduler.metricsPort) SEED_PEER \(seedPeer.port)")
        fflush(nil)

        // One wait for the signal, then every server stops in turn: the peers first, so they
        // leave a scheduler that is still there, and the scheduler before the manager. The
        // manager's REST side failing ends it all too.
        try await ProcessLifecycle.run([manager, scheduler, seedPeer, dfdaemon], logger: Logger(label: "dragonfly"))
    }
}
