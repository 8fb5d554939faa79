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
        Flags follow Dragonfly's Rust dfget. Exit status: 0 downloaded; 1 the download failed; \
        2 bad arguments (including an existing output without --overwrite); 3 the content did \
        not match --digest (nothing is left at the output path).
        """)

    @Argument(help: "The URL to download.")
    var url: String
    @Option(name: [.customShort("O"), .long], help: "Where to write the content (absolute or relative path).")
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
    @Option(help: "A query parameter left out of the task id (repeatable).")
    var filteredQueryParam: [String] = []
    @Option(help: "Text the task id is computed from instead of the URL and the fields above.")
    var contentForCalculatingTaskId: String?
    @Option(help: "Piece length, e.g. 4mib or 16MiB (4 MiB to 64 MiB); a different piece length is a different task.")
    var pieceLength: String?
    @Option(name: [.customShort("p"), .long], help: "Scheduling priority, 0 to 6 (Dragonfly's LEVEL0 to LEVEL6).")
    var priority: Int32 = 6
    @Option(help: "Give up after this many seconds.")
    var timeout: Double = 3600
    @Option(help: "The dfdaemon: host:port or unix:PATH. Default: unix:/var/run/dragonfly/dfdaemon.sock, then 127.0.0.1:65001.")
    var daemon: String?
    @Option(name: [.customShort("e"), .long], help: "The dfdaemon's unix socket (the Rust dfget's flag; --daemon takes any address).")
    var endpoint: String?
    @Flag(help: "Have the dfdaemon send each piece's content and write the file here, instead of the daemon writing it.")
    var transferFromDfdaemon = false
    @Flag(help: "Replace the output file if it exists (without it an existing file is an error).")
    var overwrite = false
    @Flag(help: "Fail rather than fetch from the origin when peers cannot supply the file, and never download directly.")
    var disableBackToSource = false
    @Flag(help: "No progress bar or progress lines.")
    var noProgress = false
    @Flag(help: "No progress output and no messages but errors.")
    var quiet = false
    @Option(name: [.customShort("l"), .long], help: "What dfget prints: trace, debug, info, warn or error.")
    var logLevel: DFGetLogLevel = .info
    @Option(help: "CA bundle to verify a TLS dfdaemon with (TCP addresses only).")
    var tlsCa: String?
    @Option(help: "Client certificate for a dfdaemon that requires one (mutual TLS).")
    var tlsCert: String?
    @Option(help: "Private key of --tls-cert.")
    var tlsKey: String?

    func run() async throws {
        let log = DFGetLog(level: quiet ? .error : logLevel)
        guard (0...6).contains(priority) else { log.fail("--priority must be 0 to 6", code: 2) }
        var pieceBytes: UInt64?
        if let pieceLength {
            guard let bytes = ByteSize.parse(pieceLength) else { log.fail("--piece-length \(pieceLength) is not a size", code: 2) }
            guard PieceLayout.allowedPieceLengths.contains(bytes) else {
                log.fail("--piece-length must be 4 MiB to 64 MiB, not \(bytes) bytes", code: 2)
            }
            pieceBytes = bytes
        }
        // The daemon writes only to absolute paths without `..` or symlinked directories: the
        // directory is made here, as the user, and named as the file system knows it.
        let requested = URL(fileURLWithPath: output).standardizedFileURL
        try? FileManager.default.createDirectory(at: requested.deletingLastPathComponent(), withIntermediateDirectories: true)
        let path = requested.deletingLastPathComponent().resolvingSymlinksInPath().appendingPathComponent(requested.lastPathComponent).path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard !isDirectory.boolValue else { log.fail("output path \(path) is a directory", code: 2) }
            guard overwrite else { log.fail("output path \(path) already exists (use --overwrite to replace it)", code: 2) }
        }
        let expected: ContentDigest?
        do { expected = try digest.map { try ContentDigest(parsing: $0) } } catch {
            log.fail("\(error)", code: 2)
        }
        var headers: [String: String] = [:]
        for h in header {
            guard let colon = h.firstIndex(of: ":") else { log.fail("header \(h) is not 'Name: value'", code: 2) }
            headers[String(h[..<colon]).trimmingCharacters(in: .whitespaces)] = String(h[h.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        }
        var download = Common_V2_Download()
        download.url = url
        download.type = .standard
        download.digest = expected?.description
        download.tag = tag
        download.application = application
        download.requestHeader = headers
        download.filteredQueryParams = (filteredQueryParams.map { $0.split(separator: ",").map(String.init) } ?? []) + filteredQueryParam
        download.contentForCalculatingTaskId = contentForCalculatingTaskId
        download.pieceLength = pieceBytes
        download.priority = Common_V2_Priority(rawValue: priority)
        download.disableBackToSource = disableBackToSource
        download.overwrite = overwrite
        download.timeout = Google_Protobuf_Duration(.seconds(Int64(timeout)))
        // The daemon writes the file, or sends the pieces for dfget to write.
        if transferFromDfdaemon {
            download.needPieceContent = true
        } else {
            download.outputPath = path
        }
        let progress = ProgressReporter(mode: quiet || noProgress ? .silent : (isatty(2) != 0 ? .bar : .lines))
        let transfer = DaemonTransfer(download: download, output: URL(fileURLWithPath: path), timeout: timeout,
                                      tls: (tlsCa, tlsCert, tlsKey), writesPieces: transferFromDfdaemon, log: log)

        let candidates = (endpoint.map { ["unix:" + $0] } ?? daemon.map { [$0] }) ?? ["unix:/var/run/dragonfly/dfdaemon.sock", "127.0.0.1:65001"]
        for address in candidates {
            log.debug("trying dfdaemon \(address)")
            switch await transfer.run(via: address, progress) {
            case .done: return
            case .failed(let error):
                log.fail(error.description, code: error.code == .internal && error.message.contains("digest") ? 3 : 1)
            case .unreachable: log.debug("dfdaemon \(address) did not answer")
            }
        }
        guard !disableBackToSource else {
            log.fail("no dfdaemon answered, and --disable-back-to-source forbids downloading from the origin", code: 1)
        }
        log.warn("no dfdaemon answered; downloading directly from the origin")
        do {
            try await DirectDownload.run(url: url, headers: headers, to: path, digest: expected, timeout: timeout)
        } catch let e as DirectDownload.DigestMismatch {
            log.fail("\(e)", code: 3)
        } catch {
            log.fail("\(error)", code: 1)
        }
    }
}
