import ArgumentParser
import GeneratedAPI
import RPCCore
import RPCTransport

@main
struct InteropClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "interop-client",
        abstract: "Runs the gRPC interop client cases against a grpc.testing.TestService server.",
        discussion: "Cases: \(InteropCases.names.joined(separator: ", ")), or 'all'. Exit 0 only if every case passed.")

    @Option(name: [.long, .customLong("server-host")], help: "Server host.")
    var host = "127.0.0.1"
    @Option(name: [.long, .customLong("server-port")], help: "Server port.")
    var port = 10000
    @Option(name: .customLong("test-case"), help: "Case to run, or 'all'.")
    var testCase = "all"
    @Flag(help: "Connect with TLS.")
    var tls = false
    @Option(help: "CA bundle to verify the server with, with --tls.")
    var ca: String?
    @Option(help: "Name to verify in the server's certificate, with --tls.")
    var serverHostOverride: String?
    @Option(help: "Client certificate and key for mutual TLS.")
    var cert: String?
    @Option(help: "Client private key for mutual TLS.")
    var key: String?
    @Option(name: .customLong("max-rss-mib"), help: "Peak memory limit for the stream_1gib case, in MiB.")
    var maxRSSMiB = 300

    func run() async throws {
        var tlsConfig: TLSConfiguration?
        if tls {
            var t = TLSConfiguration(certificateChainFile: cert, privateKeyFile: key, trustRootsFile: ca)
            t.serverNameOverride = serverHostOverride
            tlsConfig = t
        }
        let channel = try RPCChannel(configuration: RPCClientConfiguration(target: .tcp(host: host, port: port), tls: tlsConfig))
        let rpc = RPCClient(transport: channel)
        var cases = InteropCases(client: Grpc_Testing_TestServiceClient(rpc), unimplemented: Grpc_Testing_UnimplementedServiceClient(rpc), rpc: rpc)
        cases.maxRSSMiB = maxRSSMiB
        let names = testCase == "all" ? InteropCases.names : [testCase]
        var failed = 0
        for name in names {
            do {
                try await cases.run(name)
                print("PASS \(name)")
            } catch {
                print("FAIL \(name): \(error)")
                failed += 1
            }
        }
        await channel.close()
        if failed > 0 { throw ExitCode(1) }
    }
}
