import ArgumentParser
import ProtoJSON
import RPCCore
import RPCTransport
#if canImport(Glibc)
import Glibc
#endif

@main
struct DFRPCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dfrpc",
        abstract: "A grpcurl-style client for any gRPC server with server reflection.",
        discussion: """
        Addresses are host:port, [v6]:port or unix:PATH. Types and methods come from the server's \
        reflection service, so dfrpc can call servers it was not built against. Exit status: 0 on \
        success, 1 when the call failed (the status is printed to stderr), 2 on bad usage.
        """,
        subcommands: [List.self, DescribeCommand.self, Call.self])
}

struct ConnectionOptions: ParsableArguments {
    @Argument(help: "Server address: host:port or unix:PATH.")
    var address: String
    @Flag(help: "Use TLS.")
    var tls = false
    @Option(help: "CA bundle to verify the server with (TLS).")
    var cacert: String?
    @Flag(help: "Do not verify the server's certificate (TLS).")
    var insecure = false
    @Option(help: "Seconds to wait for each call.")
    var timeout: Double = 30

    func client() throws -> (RPCClient, RPCChannel) {
        var tlsConfig: TLSConfiguration?
        if tls {
            var t = TLSConfiguration(trustRootsFile: cacert)
            t.insecureSkipVerify = insecure
            tlsConfig = t
        }
        var config = try RPCClientConfiguration.parse(address, tls: tlsConfig)
        config.connectTimeout = .milliseconds(Int64(timeout * 1000))
        let channel = try RPCChannel(configuration: config)
        return (RPCClient(transport: channel), channel)
    }

    var callOptions: CallOptions { CallOptions(timeout: .milliseconds(Int64(timeout * 1000))) }
}

/// Prints an RPC failure the way users grep for it, and exits 1.
func fail(_ error: any Error) -> ExitCode {
    let text: String
    if let rpc = error as? RPCError {
        text = "ERROR:\n  Code: \(rpc.code)\n  Message: \(rpc.message)\n"
    } else {
        text = "ERROR: \(error)\n"
    }
    printError(text)
    return ExitCode(1)
}

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the services a server exposes.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let (rpc, channel) = try connection.client()
        defer { Task { await channel.close() } }
        var reflection = ReflectionClient(rpc: rpc)
        do {
            guard case .services(let names) = try await reflection.ask(.listServices) else { return }
            for name in names.sorted() { print(name) }
        } catch {
            throw fail(error)
        }
    }
}

struct DescribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "describe",
                                                    abstract: "Describe a service, method, message or enum.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "A fully qualified symbol, e.g. grpc.testing.TestService or grpc.testing.SimpleRequest.")
    var symbol: String

    func run() async throws {
        let (rpc, channel) = try connection.client()
        defer { Task { await channel.close() } }
        var reflection = ReflectionClient(rpc: rpc)
        var loader = SchemaLoader()
        let name = symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol
        do {
            try await reflection.load(symbol: name, into: &loader)
        } catch {
            throw fail(error)
        }
        let pool = loader.pool
        if let s = pool.services[name] {
            print(Describe.service(s))
        } else if let m = pool.messages[name] {
            print(Describe.message(m, pool: pool))
        } else if let e = pool.enums[name] {
            print(Describe.enumeration(e))
        } else if let dot = name.lastIndex(of: "."), let s = pool.services[String(name[..<dot])],
                  let m = s.methods.first(where: { $0.name == name[name.index(after: dot)...] }) {
            print(Describe.method(s, m))
        } else {
            printError("ERROR: symbol not found: \(name)\n")
            throw ExitCode(1)
        }
    }
}

/// Writes to standard error (unbuffered, so it interleaves correctly with stdout).
func printError(_ text: String) {
    var bytes = Array(text.utf8)
    _ = write(2, &bytes, bytes.count)
}
