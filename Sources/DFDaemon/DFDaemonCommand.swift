import ArgumentParser
import CLICommon
import DragonflyCommon
import Foundation
import Logging
import HTTPServing
import ManagerClient
import PeerDaemon
import RegistryMirror
import PeerStorage
import RPCServices
import RPCTransport

@main
struct DFDaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dfdaemon",
        abstract: "Dragonfly peer: downloads pieces from parents or the origin, caches them and serves them to others.",
        discussion: """
        One port serves gRPC (dfdaemon.v2.DfdaemonDownload, dfdaemon.v2.DfdaemonUpload, piece transfer, \
        health, reflection) and HTTP/1.1 (/metrics, /healthy); DfdaemonDownload is also served on a \
        unix socket for local clients such as dfget.
        """)

    @Option(help: "YAML config file (Dragonfly's dfdaemon keys).")
    var config: String?
    @Option(help: "Port for gRPC and HTTP (server.listen, default 65001).")
    var port: Int?
    @Option(help: "Address to listen on.")
    var listenIP: String?
    @Option(help: "Scheduler address host:port (repeatable; scheduler.addrs). Without one, every download goes to the origin.")
    var scheduler: [String] = []
    @Option(help: "Manager address (scheduler.manager.netAddrs); without --scheduler, the manager says which schedulers to use.")
    var manager: String?
    @Option(help: "Directory for cached pieces (storage.dir).")
    var dataDir: String?
    @Flag(help: "Run as a seed peer: the first to fetch from the origin (seedPeer.enable).")
    var seedPeer = false
    @Option(help: "Unix socket for local clients (download.server.socketPath); empty disables it.")
    var unixSocket: String?
    @Option(help: "IP this peer is reachable at by other peers (host.ip).")
    var ip: String?
    @Option(help: "Host name to announce (host.hostname).")
    var hostname: String?
    @OptionGroup var log: LogOptions

    @OptionGroup var tls: TLSOptions
    @Option(help: "With TLS, the plaintext port of the registry mirror, /metrics and /healthy (http.port; 0 picks one).")
    var httpPort: Int?

    func run() async throws {
        try log.bootstrap()
        var c = try config.map { try DaemonConfig.load(path: $0) } ?? DaemonConfig()
        if let port { c.port = port }
        if let listenIP { c.listenIP = listenIP }
        if !scheduler.isEmpty { c.schedulers = scheduler }
        if let manager { c.managerAddress = manager }
        if let dataDir { c.dataDir = dataDir }
        if seedPeer { c.seedPeer = true }
        if let unixSocket { c.unixSocket = unixSocket.isEmpty ? nil : unixSocket }
        if let ip { c.ip = ip }
        if let hostname { c.hostname = hostname }
        if let httpPort { c.httpPort = httpPort }
        c.tls = try tls.applied(to: c.tls)
        let logger = Logger(label: "dfdaemon")

        let store = try PieceStore(directory: c.dataDir)
        let metrics = MetricsRegistry(prefix: "dragonfly_dfdaemon_")
        PrometheusMetricsBridge.bootstrap(metrics, help: RPCServerMetrics.help)
        let daemon = Daemon(config: c, store: store, origin: .forHosts(insecure: c.proxy.insecureHosts),
                            metrics: metrics, logger: logger)
        let http = HTTPEndpointServer.operational(metrics: metrics)
        let (_, services) = StandardServices.make(for: [
            DownloadService(daemon: daemon), UploadService(daemon: daemon), PieceTransferService(daemon: daemon),
        ])
        var tcp = RPCServerConfiguration(address: .tcp(host: c.listenIP, port: c.port), tls: c.tls.server).limited(by: c.rpcLimits)
        tcp.maxReceiveMessageSize = 80 << 20
        tcp.maxSendMessageSize = 80 << 20
        let mirror = MirrorResponder(daemon: daemon, operational: http, logger: logger)
        let httpLimits = c.httpLimits
        tcp.otherProtocol = { channel in try HTTPConnection.serve(channel, responder: mirror, limits: httpLimits, logger: logger) }
        let server = RPCServer(services: services, configuration: tcp, logger: logger)
        let bound = try await server.start()
        daemon.setBoundPort(bound)
        // A TLS port carries gRPC only; the HTTP/1.1 side then gets a port of its own.
        var httpListener: HTTPListener?
        if tcp.tls != nil {
            if let port = c.httpPort {
                httpListener = try await HTTPListener.start(host: c.listenIP, port: port, responder: mirror, limits: httpLimits, logger: logger)
            } else {
                logger.warning("gRPC is served over TLS and http.port is not set: no registry mirror or /metrics")
            }
        }

        var local: RPCServer?
        if let path = c.unixSocket {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let (_, localServices) = StandardServices.make(for: [DownloadService(daemon: daemon)])
            let s = RPCServer(services: localServices, configuration: RPCServerConfiguration(address: .unix(path: path)), logger: logger)
            try await s.start()
            local = s
        }
        logger.info("dfdaemon \(c.hostID) serving on \(c.listenIP):\(bound)\(c.unixSocket.map { " and unix:\($0)" } ?? ""), schedulers: \(c.schedulers)")
        print("LISTENING \(bound)" + (httpListener.map { " METRICS \($0.port)" } ?? ""))
        fflush(nil)

        let announcer = Task { await daemon.announceHost() }
        // Fixed schedulers win; otherwise the manager says which to use.
        // A seed peer is registered with the manager and kept alive there, like a scheduler.
        var seedRegistration: Task<Void, Never>?
        if c.seedPeer, let address = c.managerAddress {
            let announcer = ManagerAnnouncer(address: address, identity: .init(
                hostname: c.hostname, ip: c.ip, idc: c.idc.isEmpty ? nil : c.idc, location: c.location.isEmpty ? nil : c.location,
                clusterID: c.seedPeerClusterID, role: .seedPeer(type: "super", port: Int32(bound), downloadPort: Int32(bound))),
                interval: c.keepAliveInterval, tls: c.tls.client, logger: logger)
            seedRegistration = Task { await announcer.run() }
        }
        var discovery: Task<Void, Never>?
        if c.schedulers.isEmpty, let address = c.managerAddress {
            let refresh = c.schedulerRefreshInterval
            discovery = Task { await daemon.followManager(address, interval: refresh) }
        }
        let gc = Task { await daemon.collectGarbage() }
        await server.runUntilTerminated()
        await httpListener?.stop()
        announcer.cancel()
        discovery?.cancel()
        seedRegistration?.cancel()
        await daemon.leave()
        gc.cancel()
        await local?.shutdownGracefully(timeout: .seconds(1))
        await daemon.close()
        await mirror.shutdown()
    }
}
