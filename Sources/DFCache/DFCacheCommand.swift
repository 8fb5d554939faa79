import ArgumentParser
import DragonflyCommon
import Foundation
import GeneratedAPI
import RPCCore
import DragonflyRPC
import RPCTransport
import TransferCLI

/// The Rust client's `dfcache`: persistent cache tasks, files imported from this node that
/// the cluster keeps in several copies until their TTL, exported anywhere in the cluster.
@main
struct DFCacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dfcache",
        abstract: "Import files into the cluster's persistent cache, and export them anywhere in it.",
        discussion: "Exit status: 0 done; 1 the daemon or the cluster refused or failed; 2 bad usage; 3 the content did not match --digest.",
        subcommands: [ImportCommand.self, ExportCommand.self, StatCommand.self, RemoveCommand.self])
}

/// How dfcache reaches its dfdaemon, and what it prints.
struct ClientOptions: ParsableArguments {
    @Option(name: [.customShort("e"), .long], help: "The dfdaemon's unix socket, or host:port for one serving DfdaemonDownload over TLS.")
    var endpoint = "/var/run/dragonfly/dfdaemon.sock"
    @Option(help: "CA bundle to verify a TLS dfdaemon with (host:port endpoints only).")
    var tlsCa: String?
    @Option(help: "Client certificate for a dfdaemon that requires one (mutual TLS).")
    var tlsCert: String?
    @Option(help: "Private key of --tls-cert.")
    var tlsKey: String?
    @Flag(help: "No progress bar or progress lines.")
    var noProgress = false
    @Option(name: [.customShort("l"), .long], help: "What dfcache prints: trace, debug, info, warn or error.")
    var logLevel: ClientLogLevel = .info

    var log: ClientLog { ClientLog(program: "dfcache", level: logLevel) }

    var progress: ProgressReporter {
        ProgressReporter(mode: noProgress ? .silent : (isatty(2) != 0 ? .bar : .lines), program: "dfcache")
    }

    /// A channel to the daemon; `pieces` raises the message limit for inline piece content.
    func channel(pieces: Bool = false) throws -> RPCChannel {
        let address = endpoint.hasPrefix("/") ? "unix:" + endpoint : endpoint
        var c = try RPCClientConfiguration.parse(address)
        if tlsCa != nil || tlsCert != nil {
            c.secure(with: TLSConfiguration(certificateChainFile: tlsCert, privateKeyFile: tlsKey, trustRootsFile: tlsCa))
        }
        c.connectTimeout = .seconds(5)
        if pieces { c.maxReceiveMessageSize = Int(PieceLayout.maxPieceLength) + (1 << 20) }
        return try RPCChannel(configuration: c)
    }

    /// Runs one call against the daemon; a failure is printed and exits 1 (3 for a digest).
    func call<T: Sendable>(pieces: Bool = false, _ body: (Dfdaemon_V2_DfdaemonDownloadClient) async throws -> T) async -> T {
        let channel: RPCChannel
        do { channel = try self.channel(pieces: pieces) } catch { log.fail("cannot reach the dfdaemon at \(endpoint): \(error)", code: 1) }
        defer { Task { await channel.close() } }
        do {
            return try await body(Dfdaemon_V2_DfdaemonDownloadClient(RPCClient(transport: channel)))
        } catch let error as RPCError {
            log.fail(error.description, code: error.message.contains("digest") && error.code == .internal ? 3 : 1)
        } catch let error as PieceFileWriter.Failure {
            log.fail(error.description, code: 1)
        } catch {
            log.fail("\(error)", code: 1)
        }
    }
}

/// Durations as the Rust dfcache takes them: `90s`, `30m`, `1h`, `7d`, or seconds alone.
enum DurationText {
    static func parse(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Int64)] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            guard let n = Int64(t.dropLast()), n >= 0, n <= Int64.max / factor else { return nil }
            return n * factor
        }
        return Int64(t).flatMap { $0 >= 0 ? $0 : nil }
    }
}
