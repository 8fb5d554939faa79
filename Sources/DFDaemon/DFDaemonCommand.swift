import ArgumentParser
import CLICommon
import DragonflyCommon
import Foundation
import Logging
import PeerConfig
import PeerNode
import RPCTransport

@main
struct DFDaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dfdaemon",
        abstract: "Dragonfly peer: downloads pieces from parents or the origin, caches them and serves them to others.",
        discussion: """
        One port serves gRPC (dfdaemon.v2.DfdaemonUpload, piece transfer, health, reflection) and \
        HTTP/1.1 (the registry mirror, /metrics, /healthy). dfdaemon.v2.DfdaemonDownload, which writes \
        files and deletes tasks, is served to local clients such as dfget on the unix socket, and on \
        the TCP port only with mutual TLS and --download-over-tcp.
        """,
        subcommands: [InitCommand.self])

    @Option(help: "YAML config file (Dragonfly's dfdaemon keys).")
    var config: String?
    @Flag(help: "Load and check the config file, print `config OK` and exit.")
    var checkConfig = false
    @Option(help: "Port for gRPC and HTTP (server.listen, default 65001).")
    var port: Int?
    @Option(help: "Address to listen on.")
    var listenIP: String?
    @Option(help: "Scheduler address host:port (repeatable; scheduler.addrs). Without one, every download goes to the origin.")
    var scheduler: [String] = []
    @Option(help: "Manager address (scheduler.manager.netAddrs); without --scheduler, the manager says which schedulers to use.")
    var manager: String?
    @Option(help: "With --seed-peer, the secret the manager requires to register (manager.registrationSecret; default $DRAGONFLY_REGISTRATION_SECRET).")
    var registrationSecret: String?
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
    @Flag(help: "Also serve DfdaemonDownload on the TCP port (download.server.allowTCP); needs mutual TLS.")
    var downloadOverTcp = false
    @Option(help: "A directory local clients may have downloads written under (repeatable; download.allowedOutputDirs).")
    var allowedOutputDir: [String] = []
    @OptionGroup var log: LogOptions

    @OptionGroup var tls: TLSOptions
    @Option(help: "With TLS, the plaintext port of the registry mirror, /metrics and /healthy (http.port; 0 picks one).")
    var httpPort: Int?

    func run() async throws {
        var c = try config.map { try DaemonConfig.load(path: $0) } ?? DaemonConfig()
        if checkConfig { return ConfigCheck.passed() }
        try log.bootstrap()
        if let port { c.port = port }
        if let listenIP { c.listenIP = listenIP }
        if !scheduler.isEmpty { c.schedulers = scheduler }
        if let manager { c.managerAddress = manager }
        if let registrationSecret { c.managerRegistrationSecret = registrationSecret }
        if let dataDir { c.dataDir = dataDir }
        if seedPeer { c.seedPeer = true }
        if let unixSocket { c.unixSocket = unixSocket.isEmpty ? nil : unixSocket }
        if let ip { c.ip = ip }
        if let hostname { c.hostname = hostname }
        if let httpPort { c.httpPort = httpPort }
        c.tls = try tls.applied(to: c.tls)
        if downloadOverTcp { c.downloadOverTCP = true }
        if !allowedOutputDir.isEmpty { c.allowedOutputDirs = allowedOutputDir }
        try c.checkDownloadOverTCP("flags")

        let metrics = MetricsRegistry(prefix: "dragonfly_dfdaemon_")
        PrometheusMetricsBridge.bootstrap(metrics, help: RPCServerMetrics.help)
        let logger = Logger(label: "dfdaemon")
        let node = try await PeerNode.start(c, metrics: metrics, logger: logger)
        print("LISTENING \(node.port)" + (node.httpPort.map { " METRICS \($0)" } ?? ""))
        fflush(nil)
        try await ProcessLifecycle.run([node], logger: logger)
    }
}
