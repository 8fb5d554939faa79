import ArgumentParser
import RPCServices
import RPCTransport

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

    func run() async throws {
        var config = RPCServerConfiguration(address: .tcp(host: host, port: port))
        config.maxReceiveMessageSize = maxReceiveMessageSize
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
        await server.runUntilTerminated()
    }
}

#if canImport(Glibc)
import Glibc
#endif
