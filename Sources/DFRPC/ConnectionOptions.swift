import ArgumentParser
import RPCCore
import RPCTransport

/// How to reach the server: plaintext HTTP/2 unless a TLS flag is given, and how long to
/// wait. Flag names follow grpcurl's (`-cacert`, `-cert`, `-key`, `-connect-timeout`,
/// `-max-time`), with two dashes.
struct ConnectionOptions: ParsableArguments {
    @Flag(help: "Plaintext HTTP/2 (h2c). The default; accepted so grpcurl command lines work.")
    var plaintext = false
    @Flag(help: "Use TLS, verifying the server with the system's CAs (or --cacert).")
    var tls = false
    @Option(help: ArgumentHelp("PEM CA bundle to verify the server with. Implies TLS.", valueName: "file"))
    var cacert: String?
    @Option(help: ArgumentHelp("PEM client certificate (chain) for mutual TLS. Implies TLS; needs --key.", valueName: "file"))
    var cert: String?
    @Option(help: ArgumentHelp("PEM private key for --cert.", valueName: "file"))
    var key: String?
    @Flag(help: "Do not verify the server's certificate (TLS; for tests against self-signed servers).")
    var insecure = false
    @Option(name: .customLong("connect-timeout"),
            help: ArgumentHelp("Seconds to wait for the connection (TCP, TLS and the server's HTTP/2 SETTINGS).", valueName: "seconds"))
    var connectTimeout: Double = 10
    @Option(name: [.customLong("max-time"), .customLong("timeout")],
            help: ArgumentHelp("Seconds the whole operation may take; each call's deadline is what is left of it.", valueName: "seconds"))
    var maxTime: Double = 30

    var usesTLS: Bool { tls || cacert != nil || cert != nil || key != nil || insecure }

    /// Checks what the parser cannot; the message says which flags clash.
    func check() throws {
        if plaintext && usesTLS {
            throw usage("--plaintext cannot be combined with --tls, --cacert, --cert, --key or --insecure")
        }
        if (cert == nil) != (key == nil) { throw usage("--cert and --key must be given together") }
        if !(connectTimeout > 0) { throw usage("--connect-timeout must be a positive number of seconds") }
        if !(maxTime > 0) { throw usage("--max-time must be a positive number of seconds") }
    }

    func deadline() -> Deadline { Deadline(seconds: maxTime) }

    func client(address: String, deadline: Deadline) throws -> (RPCClient, RPCChannel) {
        var tlsConfig: TLSConfiguration?
        if usesTLS {
            var t = TLSConfiguration(certificateChainFile: cert, privateKeyFile: key, trustRootsFile: cacert)
            t.insecureSkipVerify = insecure
            tlsConfig = t
        }
        var config = try RPCClientConfiguration.parse(address, tls: tlsConfig)
        config.connectTimeout = min(Deadline.duration(seconds: connectTimeout), deadline.remaining)
        let channel = try RPCChannel(configuration: config)
        return (RPCClient(transport: channel), channel)
    }
}

/// When the whole operation must be over (`--max-time`): every call gets what is left.
struct Deadline: Sendable {
    let end: ContinuousClock.Instant

    init(seconds: Double) { end = .now + Self.duration(seconds: seconds) }

    /// At least a millisecond, so a spent deadline still reaches the server and fails there
    /// with DEADLINE_EXCEEDED rather than as a malformed timeout.
    var remaining: Duration { max(end - .now, .milliseconds(1)) }

    func callOptions(metadata: Metadata = Metadata()) -> CallOptions {
        CallOptions(timeout: remaining, metadata: metadata)
    }

    static func duration(seconds: Double) -> Duration {
        .milliseconds(Int64(min(seconds, 1e9) * 1000))
    }
}
