import ArgumentParser
import DragonflyCommon
import Foundation
import GeneratedAPI
import RPCCore
import RPCTransport

@main
struct DFGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dfget",
        abstract: "Download a URL through the local dfdaemon (P2P), or directly when no daemon answers.",
        discussion: """
        Exit status: 0 downloaded; 1 the download failed; 2 bad arguments; 3 the content did not \
        match --digest (nothing is left at the output path).
        """)

    @Argument(help: "The URL to download.")
    var url: String
    @Option(name: .customShort("O"), help: "Where to write the content (absolute or relative path).")
    var output: String
    @Option(help: "Expected digest: sha256:<hex>, sha512:<hex> or crc32:<decimal>.")
    var digest: String?
    @Option(name: [.customShort("H"), .long], help: "Request header 'Name: value' (repeatable).")
    var header: [String] = []
    @Option(help: "Task tag: the same URL with different tags is a different task.")
    var tag: String?
    @Option(help: "Application name, also part of the task id.")
    var application: String?
    @Option(help: "Query parameters left out of the task id (comma-separated), e.g. signatures.")
    var filteredQueryParams: String?
    @Option(help: "Give up after this many seconds.")
    var timeout: Double = 3600
    @Option(help: "The dfdaemon: host:port or unix:PATH. Default: unix:/var/run/dragonfly/dfdaemon.sock, then 127.0.0.1:65001.")
    var daemon: String?
    @Flag(help: "No progress output.")
    var quiet = false
    @Option(help: "CA bundle to verify a TLS dfdaemon with (TCP addresses only).")
    var tlsCa: String?
    @Option(help: "Client certificate for a dfdaemon that requires one (mutual TLS).")
    var tlsCert: String?
    @Option(help: "Private key of --tls-cert.")
    var tlsKey: String?

    func run() async throws {
        // The daemon writes only to absolute paths without `..` or symlinked directories: the
        // directory is made here, as the user, and named as the file system knows it.
        let requested = URL(fileURLWithPath: output).standardizedFileURL
        try? FileManager.default.createDirectory(at: requested.deletingLastPathComponent(), withIntermediateDirectories: true)
        let path = requested.deletingLastPathComponent().resolvingSymlinksInPath().appendingPathComponent(requested.lastPathComponent).path
        let expected: ContentDigest?
        do { expected = try digest.map { try ContentDigest(parsing: $0) } } catch {
            FileHandle.standardError.write(Data("dfget: \(error)\n".utf8))
            throw ExitCode(2)
        }
        var headers: [String: String] = [:]
        for h in header {
            guard let colon = h.firstIndex(of: ":") else {
                FileHandle.standardError.write(Data("dfget: header \(h) is not 'Name: value'\n".utf8))
                throw ExitCode(2)
            }
            headers[String(h[..<colon]).trimmingCharacters(in: .whitespaces)] = String(h[h.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        }
        var download = Common_V2_Download()
        download.url = url
        download.outputPath = path
        download.digest = expected?.description
        download.tag = tag
        download.application = application
        download.requestHeader = headers
        download.filteredQueryParams = filteredQueryParams.map { $0.split(separator: ",").map(String.init) } ?? []
        download.timeout = Google_Protobuf_Duration(.seconds(Int64(timeout)))
        let progress = ProgressReporter(mode: quiet ? .silent : (isatty(2) != 0 ? .bar : .lines))

        let candidates = daemon.map { [$0] } ?? ["unix:/var/run/dragonfly/dfdaemon.sock", "127.0.0.1:65001"]
        for address in candidates {
            switch await viaDaemon(address, download, progress) {
            case .done: return
            case .failed(let error):
                FileHandle.standardError.write(Data("dfget: \(error)\n".utf8))
                throw ExitCode(error.code == .internal && error.message.contains("digest") ? 3 : 1)
            case .unreachable: continue
            }
        }
        if !quiet { FileHandle.standardError.write(Data("dfget: no dfdaemon answered; downloading directly from the origin\n".utf8)) }
        do {
            try await DirectDownload.run(url: url, headers: headers, to: path, digest: expected, timeout: timeout)
        } catch let e as DirectDownload.DigestMismatch {
            FileHandle.standardError.write(Data("dfget: \(e)\n".utf8))
            throw ExitCode(3)
        } catch {
            FileHandle.standardError.write(Data("dfget: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    enum Outcome { case done, failed(RPCError), unreachable }

    /// Downloads through one daemon; `.unreachable` when it never started the task, so the
    /// next daemon (or the origin) can be tried.
    func viaDaemon(_ address: String, _ download: Common_V2_Download, _ progress: ProgressReporter) async -> Outcome {
        guard let channel = try? RPCChannel(configuration: {
            var c = try RPCClientConfiguration.parse(address)
            if tlsCa != nil || tlsCert != nil {
                c.secure(with: TLSConfiguration(certificateChainFile: tlsCert, privateKeyFile: tlsKey, trustRootsFile: tlsCa))
            }
            c.connectTimeout = .seconds(2)
            return c
        }()) else { return .unreachable }
        defer { Task { await channel.close() } }
        let client = Dfdaemon_V2_DfdaemonDownloadClient(RPCClient(transport: channel))
        var started = false
        do {
            let call = try await client.downloadTask(Dfdaemon_V2_DownloadTaskRequest.with { $0.download = download },
                                                     options: CallOptions(timeout: .seconds(Int64(timeout))))
            for try await r in call.responses {
                switch r.response {
                case .downloadTaskStartedResponse(let s)?:
                    started = true
                    progress.started(total: s.contentLength)
                case .downloadPieceFinishedResponse(let p)?:
                    guard let piece = p.piece else { break }
                    progress.piece(length: piece.length, source: .init(piece.trafficType))
                case nil: break
                }
            }
            progress.finish()
            return .done
        } catch let error as RPCError {
            progress.finish()
            if !started && error.code == .unavailable { return .unreachable }
            return .failed(error)
        } catch {
            return started ? .failed(RPCError(code: .unknown, message: "\(error)")) : .unreachable
        }
    }
}
