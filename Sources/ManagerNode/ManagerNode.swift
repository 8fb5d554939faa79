import ConnectionLimits
import DragonflyCommon
import DragonflyRPC
import Foundation
import HTTPServing
import Logging
import ManagerCore
import ManagerService
import NIOCore
import ServiceLifecycle
import RPCServices
import RPCTransport
import SQLStore

/// A running manager: the gRPC server, the REST server and the background work (preheat
/// jobs, peer counts, keep-alive expiry), started together so a caller learns the bound
/// ports before anything else is started against them.
public final class ManagerNode: Service {
    public let grpcPort: Int
    public let restPort: Int
    private let grpc: RPCServer
    private let rest: HTTPListener
    private let store: ManagerStore
    private let db: any SQLDatabase
    private let preheats: PreheatRunner
    private let inspector: ClusterInspector
    private let keepAliveTimeout: Double
    private let logger: Logger

    /// Opens the store (creating root on first start), then binds gRPC and REST.
    /// `metrics` receives the manager's own series (`dragonfly_manager_…`).
    public static func start(_ c: ManagerConfig, metrics: MetricsRegistry, logger: Logger) async throws -> ManagerNode {
        try FileManager.default.createDirectory(atPath: c.dataDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        // An existing dir is tightened too; where we are not its owner (a mounted volume)
        // that fails, and the files' own 0600 still keeps others out.
        if chmod(c.dataDir, 0o700) != 0 {
            logger.warning("could not make \(c.dataDir) private (mode 0700): \(String(cString: strerror(errno)))")
        }
        let db: any SQLDatabase
        if let url = c.databaseURL {
            db = try await PostgresDatabase(url: url)
        } else {
            db = try SQLiteDatabase(path: (c.dataDir as NSString).appendingPathComponent("manager.db"))
        }
        let store = ManagerStore(db: db, logger: logger)
        let initial = ProcessInfo.processInfo.environment["DRAGONFLY_INITIAL_ROOT_PASSWORD"]
        if let generated = try await store.prepare(rootPassword: initial) {
            FileHandle.standardError.write(Data(
                "manager: created user root with password \(generated) (shown once; set DRAGONFLY_INITIAL_ROOT_PASSWORD to choose it)\n".utf8))
        }
        let signer = JWTSigner(key: try jwtKey(c), lifetime: Double(c.jwtTimeout.components.seconds))

        let registration = RegistrationGuard(secret: c.registrationSecret, mutualTLS: c.tls.server?.requireClientCertificate == true,
                                             open: c.openRegistration)
        if registration.policy == .open { logger.warning("\(registration.summary)") } else { logger.info("\(registration.summary)") }
        let (_, services) = StandardServices.make(for: [ManagerRPCService(store: store, registration: registration, logger: logger)])
        let grpc = RPCServer(services: services,
                             configuration: RPCServerConfiguration(address: .tcp(host: c.listenIP, port: c.grpcPort), tls: c.tls.server)
                                 .limited(by: c.rpcLimits),
                             logger: logger)
        let grpcPort = try await grpc.start()
        let inspector = ClusterInspector(store: store, metrics: metrics, tls: c.tls.client, logger: logger)
        let restAPI = ManagerREST(store: store, signer: signer, metrics: metrics, inspector: inspector)
        let restGate = ConnectionGate(perIP: c.rpcLimits.maxConnectionsPerIP, total: ConnectionGate.defaultTotal)
        var limits = HTTPLimits()
        limits.maxHeaderBytes = c.restMaxHeaderBytes
        limits.requestTimeout = c.restIdleTimeout
        limits.keepsBodies = true
        let rest: HTTPListener
        do {
            rest = try await HTTPListener.start(host: c.listenIP, port: c.restPort, responder: restAPI.router(logger: logger),
                                                limits: limits, admission: restGate, logger: logger)
        } catch {
            await grpc.shutdownGracefully(timeout: .seconds(1))
            await db.close()
            throw StartError("REST server failed to start on \(c.listenIP):\(c.restPort): \(error)")
        }
        let restPort = rest.port
        logger.info("manager serving gRPC on \(c.listenIP):\(grpcPort), REST on \(c.listenIP):\(restPort)")
        return ManagerNode(grpcPort: grpcPort, restPort: restPort, grpc: grpc, rest: rest, store: store, db: db,
                           preheats: PreheatRunner(store: store, tls: c.tls.client, secret: c.registrationSecret, logger: logger), inspector: inspector,
                           keepAliveTimeout: Double(c.keepAliveTimeout.components.seconds), logger: logger)
    }

    private init(grpcPort: Int, restPort: Int, grpc: RPCServer, rest: HTTPListener, store: ManagerStore,
                 db: any SQLDatabase,
                 preheats: PreheatRunner, inspector: ClusterInspector, keepAliveTimeout: Double, logger: Logger) {
        self.grpcPort = grpcPort
        self.restPort = restPort
        self.grpc = grpc
        self.rest = rest
        self.store = store
        self.db = db
        self.preheats = preheats
        self.inspector = inspector
        self.keepAliveTimeout = keepAliveTimeout
        self.logger = logger
    }

    /// Serves until a graceful shutdown (SIGTERM or SIGINT in a `ServiceGroup`) or until the
    /// calling task is cancelled: gRPC stops first (GOAWAY, open calls finish), then REST
    /// stops accepting, then the background loops.
    public func run() async throws {
        let (store, logger, timeout) = (store, logger, keepAliveTimeout)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [preheats] in await preheats.run() }
            group.addTask { [inspector] in await inspector.syncPeers(every: .seconds(30)) }
            group.addTask {
                while !Task.isCancelled {
                    guard (try? await Task.sleep(for: .seconds(max(1, timeout / 4)))) != nil else { return }
                    if let n = try? await store.expireKeepAlives(olderThan: timeout), n > 0 {
                        logger.info("\(n) instance(s) silent for \(Int(timeout))s marked inactive")
                    }
                }
            }
            await cancelWhenGracefulShutdown { [grpc] in await grpc.runUntilCancelled() }
            await rest.stop()
            group.cancelAll()
        }
        await db.close()
        logger.info("manager stopped")
    }

    /// The JWT key from the config, else one kept in the data dir so sessions survive restarts.
    static func jwtKey(_ c: ManagerConfig) throws -> String {
        if let key = c.jwtKey, !key.isEmpty { return key }
        let path = (c.dataDir as NSString).appendingPathComponent("jwt.key")
        if let existing = try? String(contentsOfFile: path, encoding: .utf8), !existing.isEmpty { return existing }
        let key = Secrets.hex(Secrets.randomBytes(32))
        FileManager.default.createFile(atPath: path, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600])
        return key
    }
}

/// A manager that could not start; the message says which part and why.
public struct StartError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
