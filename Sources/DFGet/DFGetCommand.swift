import TransferCLI
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
    @Flag(name: [.customShort("r"), .long], help: "Download a directory: every file under URL (which ends in /) into -O DIR, each its own task.")
    var recursive = false
    @Option(name: [.customShort("I"), .long], help: "With --recursive: only paths (relative to URL) matching this glob, or under this dir/ (repeatable).")
    var includeFiles: [String] = []
    @Option(help: "With --recursive: refuse a directory with more files than this.")
    var maxFiles = 100
    @Option(help: "With --recursive: files downloaded at once.")
    var maxConcurrentRequests = 5
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
    var logLevel: ClientLogLevel = .info
    @Option(help: "CA bundle to verify a TLS dfdaemon with (TCP addresses only).")
    var tlsCa: String?
    @Option(help: "Client certificate for a dfdaemon that requires one (mutual TLS).")
    var tlsCert: String?
    @Option(help: "Private key of --tls-cert.")
    var tlsKey: String?

    func run() async throws {
        let log = ClientLog(program: "dfget", level: quiet ? .error : logLevel)
        guard (0...6).contains(priority) else { log.fail("--priority must be 0 to 6", code: 2) }
        var pieceBytes: UInt64?
        if let pieceLength {
            guard let bytes = ByteSize.parse(pieceLength) else { log.fail("--piece-length \(pieceLength) is not a size", code: 2) }
            guard PieceLayout.allowedPieceLengths.contains(bytes) else {
                log.fail("--piece-length must be 4 MiB to 64 MiB, not \(bytes) bytes", code: 2)
            }
            pieceBytes = bytes
        }
        let candidates = (endpoint.map { ["unix:" + $0] } ?? daemon.map { [$0] }) ?? ["unix:/var/run/dragonfly/dfdaemon.sock", "127.0.0.1:65001"]
        if recursive { return await runRecursive(log: log, pieceBytes: pieceBytes, candidates: candidates) }
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
        let headers = parsedHeaders(log)
        var download = downloadTemplate(headers: headers, pieceBytes: pieceBytes)
        download.digest = expected?.description
        // The daemon writes the file, or sends the pieces for dfget to write.
        if transferFromDfdaemon {
            download.needPieceContent = true
        } else {
            download.outputPath = path
        }
        let progress = ProgressReporter(mode: quiet || noProgress ? .silent : (isatty(2) != 0 ? .bar : .lines))
        let transfer = DaemonTransfer(download: download, output: URL(fileURLWithPath: path), timeout: timeout,
                                      tls: (tlsCa, tlsCert, tlsKey), writesPieces: transferFromDfdaemon, log: log)

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

    private func parsedHeaders(_ log: ClientLog) -> [String: String] {
        var headers: [String: String] = [:]
        for h in header {
            guard let colon = h.firstIndex(of: ":") else { log.fail("header \(h) is not 'Name: value'", code: 2) }
            headers[String(h[..<colon]).trimmingCharacters(in: .whitespaces)] = String(h[h.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        }
        return headers
    }

    /// The request for `url` as the flags describe it, without its output.
    private func downloadTemplate(headers: [String: String], pieceBytes: UInt64?) -> Common_V2_Download {
        var download = Common_V2_Download()
        download.url = url
        download.type = .standard
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
        return download
    }

    private func runRecursive(log: ClientLog, pieceBytes: UInt64?, candidates: [String]) async {
        guard digest == nil, contentForCalculatingTaskId == nil, !transferFromDfdaemon else {
            log.fail("--recursive downloads many files: --digest, --content-for-calculating-task-id and --transfer-from-dfdaemon do not apply", code: 2)
        }
        guard (1...100_000).contains(maxFiles), (1...64).contains(maxConcurrentRequests) else {
            log.fail("--max-files must be 1 to 100000 and --max-concurrent-requests 1 to 64", code: 2)
        }
        // As upstream's dfget: a directory URL ends in a slash.
        let text = url.hasSuffix("/") ? url : url + "/"
        guard let root = URL(string: text), ["http", "https"].contains(root.scheme?.lowercased() ?? "") else {
            log.fail("--recursive needs an http or https URL, not \(url)", code: 2)
        }
        let directory = URL(fileURLWithPath: output).standardizedFileURL
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            log.fail("output path \(directory.path) is a file; --recursive writes into a directory", code: 2)
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            log.fail("cannot create \(directory.path): \(error)", code: 1)
        }
        for pattern in includeFiles where pattern.hasPrefix("/") || pattern.split(separator: "/").contains("..") {
            log.fail("--include-files \(pattern): patterns are relative to the URL, without ..", code: 2)
        }
        let job = RecursiveDownload(root: root, outputDirectory: directory.resolvingSymlinksInPath(), includeFiles: includeFiles,
                                    maxFiles: maxFiles, maxConcurrent: maxConcurrentRequests,
                                    template: downloadTemplate(headers: parsedHeaders(log), pieceBytes: pieceBytes),
                                    timeout: timeout, tls: (tlsCa, tlsCert, tlsKey), overwrite: overwrite, log: log)
        do {
            try await job.run(candidates: candidates)
        } catch {
            log.fail(error.description, code: error.code)
        }
    }
}
