import ArgumentParser
import RPCServices
import RPCTransport
import Logging
import ServiceLifecycle

@main
struct InteropServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "interop-server",
        abstract: "Serves grpc.testing.TestService (the gRPC interop suite), with health and reflection.")

    @Option(help: "Port to listen on; 0 picks a free one. The bound port is printed as 'LISTENING <port>'.")
    var port = 10000
    @Option(help: "Address to bind.")
    var host = "127.0.0.1"
    @Flag(help: "Serve TLS (ALPN h2) instead of h2c.")
    var tls = false
    @Option(help: "PEM certificate chain, with --tls.")
    var cert: String?
    @Option(help: "PEM private key, with --tls.")
    var key: String?
    @Option(help: "CA bundle to verify client certificates with: enables mutual TLS.")
    var clientCA: String?
    @Option(help: "Largest request message accepted, in bytes.")
    var maxReceiveMessageSize = 4 << 20
    @Option(help: "SETTINGS_MAX_CONCURRENT_STREAMS.")
    var maxConcurrentStreams: UInt32 = 100
    @Option(help: "SETTINGS_MAX_HEADER_LIST_SIZE, in bytes.")
    var maxHeaderListSize: UInt32 = 16 << 10
    @Option(help: "SETTINGS_MAX_FRAME_SIZE, in bytes.")
    var maxFrameSize: UInt32 = 16 << 10
    @Option(help: "Seconds a client has to send the HTTP/2 preface and SETTINGS (0: no limit).")
    var handshakeTimeout = 10.0
    @Option(help: "Seconds after which a connection with no call and no input is closed (0: never).")
    var idleTimeout = 0.0
    @Option(help: "Calls per second each service accepts (0: no limit).")
    var requestRateLimit = 0.0
    @Option(help: "Calls a service accepts at once before the rate applies.")
    var requestBurst = 100.0
    @Option(help: "SETTINGS_INITIAL_WINDOW_SIZE, in bytes.")
    var initialWindowSize: UInt32 = 1 << 20

    func run() async throws {
        var config = RPCServerConfiguration(address: .tcp(host: host, port: port))
        config.maxReceiveMessageSize = maxReceiveMessageSize
        config.maxConcurrentStreams = maxConcurrentStreams
        config.maxHeaderListSize = maxHeaderListSize
        config.maxFrameSize = maxFrameSize
        config.handshakeTimeout = handshakeTimeout > 0 ? .milliseconds(Int64(handshakeTimeout * 1000)) : nil
        config.idleTimeout = idleTimeout > 0 ? .milliseconds(Int64(idleTimeout * 1000)) : nil
        config.requestRateLimit = requestRateLimit > 0 ? requestRateLimit : nil
        config.requestBurst = requestBurst
        config.initialWindowSize = initialWindowSize
        if tls {
            guard let cert, let key else { throw ValidationError("--tls needs --cert and --key") }
            var t = TLSConfiguration(certificateChainFile: cert, privateKeyFile: key, trustRootsFile: clientCA)
            t.requireClientCertificate = clientCA != nil
            config.tls = t
        }
        let (_, services) = StandardServices.make(for: [TestService()])
        let server = RPCServer(services: services, configuration: config)
        let bound = try await server.start()
        print("LISTENING \(bound)")
        fflush(nil)
        let group = ServiceGroup(configuration: .init(services: [ServingUntilShutdown(server: server)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "interop-server")))
        try await group.run()
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// The server as a service: it stops taking calls and lets open ones finish when the group
/// shuts down.
struct ServingUntilShutdown: Service {
    let server: RPCServer
    func run() async throws {
        await cancelWhenGracefulShutdown { await server.runUntilCancelled() }
    }
}
