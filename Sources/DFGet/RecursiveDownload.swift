import TransferCLI
import DragonflyCommon
import DragonflyRPC
import Foundation
import GeneratedAPI
import RPCCore
import RPCTransport
#if canImport(Glibc)
import Glibc
#endif

/// `dfget --recursive URL/ -O DIR`: the daemon lists the directory (ListTaskEntries), and
/// each file under it is downloaded through the daemon as a task of its own, into the same
/// relative path under DIR, a few at a time. The listing is the origin's, so every path is
/// checked before anything is written: percent-decoded, no `.`, `..` or empty segments,
/// inside DIR.
struct RecursiveDownload {
    let root: URL
    let outputDirectory: URL
    /// Glob patterns on paths relative to the root (`*.bin`, `sub/*`, `sub/dir/`); none: all.
    let includeFiles: [String]
    let maxFiles: Int
    let maxConcurrent: Int
    let template: Common_V2_Download
    let timeout: Double
    let tls: (ca: String?, cert: String?, key: String?)
    let overwrite: Bool
    let log: ClientLog

    struct Failure: Error, CustomStringConvertible {
        let description: String
        let code: Int32
    }

    /// A file of the listing and where it goes.
    struct Planned {
        let url: String
        let relativePath: String
    }

    /// Runs against the first daemon in `candidates` that answers the listing.
    func run(candidates: [String]) async throws(Failure) {
        var listed: (address: String, entries: [Dfdaemon_V2_Entry])?
        for address in candidates {
            do {
                listed = (address, try await list(via: address))
                break
            } catch let error as RPCError where error.code == .unavailable {
                log.debug("dfdaemon \(address) did not answer: \(error)")
            } catch {
                throw Failure(description: "listing \(root.absoluteString): \(error)", code: 1)
            }
        }
        guard let listed else {
            throw Failure(description: "no dfdaemon answered; a directory is listed by the dfdaemon (there is no direct fallback)", code: 1)
        }
        let plan = try planned(listed.entries)
        guard plan.count <= maxFiles else {
            throw Failure(description: "\(root.absoluteString) holds \(plan.count) files to download, more than --max-files \(maxFiles)", code: 2)
        }
        if plan.isEmpty { log.warn("no files under \(root.absoluteString) to download") }
        let failures = await downloadAll(plan, via: listed.address)
        if let first = failures.first {
            throw Failure(description: "\(failures.count) of \(plan.count) files failed; first: \(first)", code: 1)
        }
        log.info("downloaded \(plan.count) files into \(outputDirectory.path)")
    }

    private func list(via address: String) async throws -> [Dfdaemon_V2_Entry] {
        var c = try RPCClientConfiguration.parse(address)
        if tls.ca != nil || tls.cert != nil {
            c.secure(with: TLSConfiguration(certificateChainFile: tls.cert, privateKeyFile: tls.key, trustRootsFile: tls.ca))
        }
        c.connectTimeout = .seconds(2)
        // A listing of up to 10,000 entries with their URLs.
        c.maxReceiveMessageSize = 64 << 20
        let channel = try RPCChannel(configuration: c)
        defer { Task { await channel.close() } }
        let client = Dfdaemon_V2_DfdaemonDownloadClient(RPCClient(transport: channel))
        let response = try await client.listTaskEntries(Dfdaemon_V2_ListTaskEntriesRequest.with {
            $0.taskId = UUID().uuidString.lowercased()
            $0.url = root.absoluteString
            $0.requestHeader = template.requestHeader
        }, options: CallOptions(timeout: .seconds(Int64(timeout))))
        return response.entries
    }

    /// The files to download, each with its checked relative path, filtered by the patterns.
    func planned(_ entries: [Dfdaemon_V2_Entry]) throws(Failure) -> [Planned] {
        let base = root.absoluteString
        var out: [Planned] = []
        for entry in entries where !entry.isDir {
            guard entry.url.hasPrefix(base), entry.url.count > base.count else {
                throw Failure(description: "the listing names \(entry.url), outside \(base)", code: 1)
            }
            guard let relative = Self.safeRelativePath(String(entry.url.dropFirst(base.count))) else {
                throw Failure(description: "the listing names \(entry.url), which is not a safe relative path", code: 1)
            }
            if includeFiles.isEmpty || includeFiles.contains(where: { Self.matches(relative, pattern: $0) }) {
                out.append(Planned(url: entry.url, relativePath: relative))
            }
        }
        return out.sorted { $0.relativePath < $1.relativePath }
    }

    /// `a/b%20c.txt` -> `a/b c.txt`; nil for anything that could leave the directory or
    /// name something other than a plain file below it.
    static func safeRelativePath(_ encoded: String) -> String? {
        guard !encoded.hasSuffix("/"), encoded.utf8.count <= 4096 else { return nil }
        var parts: [String] = []
        for segment in encoded.split(separator: "/", omittingEmptySubsequences: false) {
            guard let decoded = String(segment).removingPercentEncoding, !decoded.isEmpty, decoded != ".", decoded != "..",
                  !decoded.contains("/"), !decoded.contains("\0"), decoded.utf8.count <= 255 else { return nil }
            parts.append(decoded)
        }
        guard !parts.isEmpty, parts.count <= 64 else { return nil }
        return parts.joined(separator: "/")
    }

    /// A relative path against a pattern: a glob (`*`, `?`, `[...]`; `*` stays within one
    /// directory), or a directory ending in `/` that takes everything below it.
    static func matches(_ path: String, pattern: String) -> Bool {
        if pattern.hasSuffix("/") { return path.hasPrefix(pattern) }
        return fnmatch(pattern, path, FNM_PATHNAME) == 0
    }

    /// Downloads the plan `maxConcurrent` at a time; returns the failures.
    private func downloadAll(_ plan: [Planned], via address: String) async -> [String] {
        await withTaskGroup(of: String?.self) { group in
            var next = 0
            var failures: [String] = []
            func launch() {
                guard next < plan.count else { return }
                let item = plan[next]
                next += 1
                group.addTask { await self.downloadOne(item, via: address) }
            }
            for _ in 0..<max(1, maxConcurrent) { launch() }
            while let result = await group.next() {
                if let result { failures.append(result) }
                launch()
            }
            return failures
        }
    }

    private func downloadOne(_ item: Planned, via address: String) async -> String? {
        let target = outputDirectory.appendingPathComponent(item.relativePath)
        let directory = target.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            return "\(item.relativePath): cannot create \(directory.path): \(error)"
        }
        // Created above as this user; the daemon refuses symlinked directories itself.
        let path = directory.resolvingSymlinksInPath().appendingPathComponent(target.lastPathComponent).path
        guard path.hasPrefix(outputDirectory.resolvingSymlinksInPath().path + "/") else {
            return "\(item.relativePath): resolves outside \(outputDirectory.path)"
        }
        if FileManager.default.fileExists(atPath: path), !overwrite {
            return "\(item.relativePath): \(path) already exists (use --overwrite to replace it)"
        }
        var download = template
        download.url = item.url
        download.outputPath = path
        let transfer = DaemonTransfer(download: download, output: URL(fileURLWithPath: path), timeout: timeout, tls: tls,
                                      writesPieces: false, log: log)
        switch await transfer.run(via: address, ProgressReporter(mode: .silent)) {
        case .done:
            log.debug("\(item.relativePath) downloaded")
            return nil
        case .failed(let error): return "\(item.relativePath): \(error)"
        case .unreachable: return "\(item.relativePath): the dfdaemon at \(address) stopped answering"
        }
    }
}
