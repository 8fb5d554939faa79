import ArgumentParser
import CLICommon
import DragonflyCommon
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import ManagerCore
import ManagerService
import RPCServices
import RPCTransport
import SQLStore

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
    @OptionGroup var log: LogOptions

    @OptionGroup var tls: TLSOptions

    func run() async throws {
        try log.bootstrap()
        var settings = try config.map { try ManagerConfig.load(path: $0) } ?? ManagerConfig()
        if let grpcPort { settings.grpcPort = grpcPort }
        if let restPort { settings.restPort = restPort }
        if let listenIP { settings.listenIP = listenIP }
        if let dataDir { settings.dataDir = dataDir }
        if let databaseURL { settings.databaseURL = databaseURL }
        settings.tls = try tls.applied(to: settings.tls)
        let c = settings  // fixed from here on
        let logger = Logger(label: "manager")
        try FileManager.default.createDirectory(atPath: c.dataDir, withIntermediateDirectories: true)

        let db: any SQLDatabase
        if let url = c.databaseURL {
            db = try await PostgresDatabase(url: url)
        } else {
            db = try SQLiteDatabase(path: (c.dataDir as NSString).appendingPathComponent("manager.db"))
        }
        let store = ManagerStore(db: db, logger: logger)
        let initial = ProcessInfo.processInfo.environment["DRAGONFLY_INITIAL_ROOT_PASSWORD"]
        if let generated = try await store.prepare(rootPassword: initial) {
            printError("manager: created user root with password \(generated) (shown once; set DRAGONFLY_INITIAL_ROOT_PASSWORD to choose it)")
        }
        let signer = JWTSigner(key: try jwtKey(c), lifetime: Double(c.jwtTimeout.components.seconds))
        let metrics = MetricsRegistry(prefix: "dragonfly_manager_")
        PrometheusMetricsBridge.bootstrap(metrics, help: RPCServerMetrics.help)

        let (_, services) = StandardServices.make(for: [ManagerRPCService(store: store, logger: logger)])
        let grpc = RPCServer(services: services, configuration: RPCServerConfiguration(address: .tcp(host: c.listenIP, port: c.grpcPort), tls: c.tls.server)
                                .limited(by: c.rpcLimits),
                             logger: logger)
        let grpcPort = try await grpc.start()
        let inspector = ClusterInspector(store: store, metrics: metrics, tls: c.tls.client, logger: logger)
        let rest = ManagerREST(store: store, signer: signer, metrics: metrics, inspector: inspector)
        let http1 = HTTP1Channel.Configuration(
            idleTimeout: .nanoseconds(Int64(c.restIdleTimeout.components.seconds) * 1_000_000_000),
            httpDecoderConfiguration: .init(maxHeaderFieldSize: c.restMaxHeaderBytes, maxHeaderListSize: c.restMaxHeaderBytes,
                                             maxHeaderFieldCount: 200))
        let app = Application(router: rest.router(), server: .http1(configuration: http1),
                              configuration: .init(address: .hostname(c.listenIP, port: c.restPort)),
                              onServerRunning: { channel in
                                  let port = channel.localAddress?.port ?? c.restPort
                                  logger.info("manager serving gRPC on \(c.listenIP):\(grpcPort), REST on \(c.listenIP):\(port)")
                                  print("LISTENING \(grpcPort) METRICS \(port)")
                                  fflush(nil)
                              }, logger: logger)
        let timeout = Double(c.keepAliveTimeout.components.seconds)
        let preheats = PreheatRunner(store: store, tls: c.tls.client, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            group.addTask { await preheats.run() }
            group.addTask { await inspector.syncPeers(every: .seconds(30)) }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(max(1, timeout / 4)))
                    if let n = try? await store.expireKeepAlives(olderThan: timeout), n > 0 {
                        logger.info("\(n) instance(s) silent for \(Int(timeout))s marked inactive")
                    }
                }
            }
            // Whichever ends first ends the manager: a signal stopping gRPC, or the REST
            // server failing (a port in use), which must not leave half a manager running.
            group.addTask { await grpc.runUntilTerminated() }
            defer { group.cancelAll() }
            do {
                _ = try await group.next()
            } catch {
                logger.critical("REST server failed: \(error)")
                throw error
            }
        }
        await db.close()
    }

    /// The JWT key from the config, else one kept in the data dir so sessions survive restarts.
    func jwtKey(_ c: ManagerConfig) throws -> String {
        if let key = c.jwtKey, !key.isEmpty { return key }
        let path = (c.dataDir as NSString).appendingPathComponent("jwt.key")
        if let existing = try? String(contentsOfFile: path, encoding: .utf8), !existing.isEmpty { return existing }
        let key = Secrets.hex(Secrets.randomBytes(32))
        FileManager.default.createFile(atPath: path, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600])
        return key
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
