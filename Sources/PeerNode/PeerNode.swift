import ConnectionLimits
import DragonflyCommon
import DragonflyRPC
import Foundation
import HTTPServing
import Logging
import ManagerClient
import PeerDaemon
import PeerStorage
import RegistryMirror
import RPCCore
import RPCServices
import RPCTransport
import ServiceLifecycle
import VortexTransport

/// A running dfdaemon or seed peer: the shared gRPC/HTTP port (or gRPC over TLS plus a
/// plaintext HTTP port), the local unix socket, and the background work — announcing to
/// the scheduler, following the manager, a seed peer's keep-alive, garbage collection.
public final class PeerNode: Service {
    /// The shared port (gRPC, and HTTP/1.1 unless TLS is on).
    public let port: Int
    /// With TLS, the plaintext mirror and /metrics port, if one is configured.
    public let httpPort: Int?
    /// The Vortex piece port, unless it is turned off.
    public let vortexPort: Int?
    private let config: DaemonConfig
    private let daemon: Daemon
    private let server: RPCServer
    private let httpListener: HTTPListener?
    private let vortex: VortexServer?
    private let local: RPCServer?
    private let mirror: MirrorResponder
    private let logger: Logger

    /// Opens the cache and binds the ports. `metrics` receives the daemon's series
    /// (`dragonfly_dfdaemon_…`).
    public static func start(_ c: DaemonConfig, metrics: MetricsRegistry, logger: Logger) async throws -> PeerNode {
        let store = try PieceStore(directory: c.dataDir, directIO: c.storageDirectIO)
        let daemon = Daemon(config: c, store: store, origin: .forHosts(insecure: c.proxy.insecureHosts, policy: c.originPolicy),
                            metrics: metrics, logger: logger)
        let operational = OperationalEndpoints.routes(metrics: metrics)
        // The download service writes files and deletes tasks: on TCP only for clients with
        // a certificate from our CA, and only when asked for.
        var tcpServices: [any RPCServiceProvider] = [UploadService(daemon: daemon), PieceTransferService(daemon: daemon)]
        if c.downloadOverTCP && c.tls.server?.requireClientCertificate == true { tcpServices.insert(DownloadService(daemon: daemon), at: 0) }
        let (_, services) = StandardServices.make(for: tcpServices)
        var tcp = RPCServerConfiguration(address: .tcp(host: c.listenIP, port: c.port), tls: c.tls.server).limited(by: c.rpcLimits)
        // Requests are small (rpc.maxReceiveMessageSize, 4 MiB by default); answers carry
        // pieces of up to 64 MiB.
        tcp.maxSendMessageSize = 80 << 20
        let mirror = MirrorResponder(daemon: daemon, operational: operational, logger: logger)
        let httpLimits = HTTPLimits(c.httpLimits)
        tcp.otherProtocol = { channel in try HTTPConnection.serve(channel, responder: mirror, limits: httpLimits, logger: logger) }
        let server = RPCServer(services: services, configuration: tcp, logger: logger)
        let bound = try await server.start()
        daemon.setBoundPort(bound)
        // A TLS port carries gRPC only; the HTTP/1.1 side then gets a port of its own.
        var httpListener: HTTPListener?
        var local: RPCServer?
        var vortex: VortexServer?
        do {
            if let port = c.vortexPort {
                let limits = VortexServer.Limits(idleTimeout: c.rpcLimits.idleTimeout, maxConnectionsPerIP: c.rpcLimits.maxConnectionsPerIP)
                let server = try await VortexServer.start(host: c.listenIP, port: port, source: VortexUploadSource(daemon: daemon),
                                                          logger: logger, limits: limits)
                daemon.setVortexPort(server.port)
                vortex = server
            }
            if tcp.tls != nil {
                if let port = c.httpPort {
                    let gate = ConnectionGate(perIP: c.rpcLimits.maxConnectionsPerIP, total: ConnectionGate.defaultTotal)
                    httpListener = try await HTTPListener.start(host: c.listenIP, port: port, responder: mirror, limits: httpLimits,
                                                                admission: gate, logger: logger)
                } else {
                    logger.warning("gRPC is served over TLS and http.port is not set: no registry mirror or /metrics")
                }
            }
            if let path = c.unixSocket {
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                let (_, localServices) = StandardServices.make(for: [DownloadService(daemon: daemon)])
                let s = RPCServer(services: localServices, configuration: RPCServerConfiguration(address: .unix(path: path)), logger: logger)
                try await s.start()
                local = s
            }
        } catch {
            await vortex?.stop()
            await httpListener?.stop()
            await server.shutdownGracefully(timeout: .seconds(1))
            await daemon.close()
            throw error
        }
        logger.info("dfdaemon \(c.hostID) serving on \(c.listenIP):\(bound)\(c.unixSocket.map { " and unix:\($0)" } ?? "")\(vortex.map { ", Vortex on \($0.port)" } ?? ""), schedulers: \(c.schedulers)")
        return PeerNode(port: bound, httpPort: httpListener?.port, vortexPort: vortex?.port, config: c, daemon: daemon, server: server,
                        httpListener: httpListener, vortex: vortex, local: local, mirror: mirror, logger: logger)
    }

    private init(port: Int, httpPort: Int?, vortexPort: Int?, config: DaemonConfig, daemon: Daemon, server: RPCServer,
                 httpListener: HTTPListener?, vortex: VortexServer?, local: RPCServer?, mirror: MirrorResponder, logger: Logger) {
        self.port = port
        self.httpPort = httpPort
        self.vortexPort = vortexPort
        self.vortex = vortex
        self.config = config
        self.daemon = daemon
        self.server = server
        self.httpListener = httpListener
        self.local = local
        self.mirror = mirror
        self.logger = logger
    }

    /// Serves until a graceful shutdown (SIGTERM or SIGINT in a `ServiceGroup`) or until the
    /// calling task is cancelled; then leaves the scheduler and closes.
    public func run() async throws {
        let c = config
        let daemon = daemon
        let announcer = Task { await daemon.announceHost() }
        // A seed peer is registered with the manager and kept alive there, like a scheduler.
        var seedRegistration: Task<Void, Never>?
        if c.seedPeer, let address = c.managerAddress {
            let announcer = ManagerAnnouncer(address: address, identity: .init(
                hostname: c.hostname, ip: c.ip, idc: c.idc.isEmpty ? nil : c.idc, location: c.location.isEmpty ? nil : c.location,
                clusterID: c.seedPeerClusterID, role: .seedPeer(type: "super", port: Int32(port), downloadPort: Int32(port))),
                interval: c.keepAliveInterval, tls: c.tls.client, registrationSecret: c.managerRegistrationSecret, logger: logger)
            seedRegistration = Task { await announcer.run() }
        }
        // Fixed schedulers win; otherwise the manager says which to use.
        var discovery: Task<Void, Never>?
        if c.schedulers.isEmpty, let address = c.managerAddress {
            let refresh = c.schedulerRefreshInterval
            discovery = Task { await daemon.followManager(address, interval: refresh) }
        }
        let gc = Task { await daemon.collectGarbage() }
        let stats = Task { await daemon.stats.run() }
        let server = server
        await cancelWhenGracefulShutdown { await server.runUntilCancelled() }
        await httpListener?.stop()
        await vortex?.stop()
        announcer.cancel()
        discovery?.cancel()
        seedRegistration?.cancel()
        await daemon.leave()
        gc.cancel()
        stats.cancel()
        await stats.value
        await local?.shutdownGracefully(timeout: .seconds(1))
        await daemon.close()
        await mirror.shutdown()
        logger.info("dfdaemon stopped")
    }
}

extension HTTPLimits {
    /// The server's defaults with what the config file set.
    init(_ settings: HTTPLimitSettings) {
        self.init()
        if let v = settings.maxURILength { maxURILength = v }
        if let v = settings.maxHeaderBytes { maxHeaderBytes = v }
        if let v = settings.maxBodyBytes { maxBodyBytes = v }
        if let v = settings.requestTimeout { requestTimeout = v }
    }
}
