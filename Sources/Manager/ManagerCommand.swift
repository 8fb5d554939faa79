import ArgumentParser
import CLICommon
import DragonflyCommon
import Foundation
import Logging
import ManagerNode
import RPCTransport

@main
struct ManagerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manager",
        abstract: "Dragonfly manager: scheduler clusters, schedulers, seed peers, users and jobs.",
        discussion: """
        Serves manager.v2.Manager (with health and reflection) over gRPC, and the REST API, /metrics and /healthy over HTTP.
        The store is an SQLite file in --data-dir unless --database-url names a PostgreSQL database.
        On first start a root user is made with DRAGONFLY_INITIAL_ROOT_PASSWORD, or a generated password printed once.
        """)

    @Option(help: "YAML config file (Dragonfly's manager keys).")
    var config: String?
    @Flag(help: "Load and check the config file, print `config OK` and exit.")
    var checkConfig = false
    @Option(help: "gRPC port (server.grpc.port, default 65003).")
    var grpcPort: Int?
    @Option(help: "REST port (server.rest.addr, default 8080).")
    var restPort: Int?
    @Option(help: "Address to listen on.")
    var listenIP: String?
    @Option(help: "Directory of the SQLite store (and other files).")
    var dataDir: String?
    @Option(help: "postgres://user:password@host:5432/dbname: a shared PostgreSQL store instead of SQLite.")
    var databaseURL: String?
    @Option(help: ArgumentHelp("Secret schedulers and seed peers present to register (security.registrationSecret).",
                               discussion: "Default: $DRAGONFLY_REGISTRATION_SECRET, which keeps it out of the process list."))
    var registrationSecret: String?
    @Flag(help: "Let anyone who reaches the gRPC port register schedulers and seed peers (security.openRegistration).")
    var openRegistration = false
    @OptionGroup var log: LogOptions

    @OptionGroup var tls: TLSOptions

    func run() async throws {
        var c = try config.map { try ManagerConfig.load(path: $0) } ?? ManagerConfig()
        if checkConfig { return ConfigCheck.passed() }
        try log.bootstrap()
        if let grpcPort { c.grpcPort = grpcPort }
        if let restPort { c.restPort = restPort }
        if let listenIP { c.listenIP = listenIP }
        if let dataDir { c.dataDir = dataDir }
        if let databaseURL { c.databaseURL = databaseURL }
        if let secret = registrationSecret ?? c.registrationSecret ?? ProcessInfo.processInfo.environment[ManagerConfig.registrationSecretVariable],
           !secret.isEmpty {
            c.registrationSecret = secret
        }
        if openRegistration { c.openRegistration = true }
        c.tls = try tls.applied(to: c.tls)

        let metrics = MetricsRegistry(prefix: "dragonfly_manager_")
        PrometheusMetricsBridge.bootstrap(metrics, help: RPCServerMetrics.help)
        let logger = Logger(label: "manager")
        let node = try await ManagerNode.start(c, metrics: metrics, logger: logger)
        print("LISTENING \(node.grpcPort) METRICS \(node.restPort)")
        fflush(nil)
        try await ProcessLifecycle.run([node], logger: logger)
    }
}
