import DragonflyCommon
import DragonflyRPC
import Foundation
import GeneratedAPI
import RPCCore

extension Daemon {
    /// Whether callers on the TCP port proved who they are (mutual TLS): only they may have
    /// this node read an origin and hand them what it read.
    var tcpCallersAreAuthenticated: Bool { config.tls.server?.requireClientCertificate == true }

    /// Bounds on one listing: an origin's index is hostile, and a listing is answered whole.
    static let maxListedEntries = 10_000
    static let maxIndexPages = 1_000
    static let maxIndexPageBytes = 8 << 20

    /// `ListTaskEntries`: what a URL holds. A file (a URL not ending in `/`) is stat'ed with
    /// a HEAD and has no entries, as upstream's HTTP backend answers. A directory is read
    /// from the origin's generated index pages, every level below it, and comes back as
    /// one list of files and directories (upstream's object-storage backends list the same
    /// way), for `dfget --recursive`. Files from an index have no known length (0).
    func listTaskEntries(_ request: Dfdaemon_V2_ListTaskEntriesRequest) async throws -> Dfdaemon_V2_ListTaskEntriesResponse {
        guard let root = URL(string: request.url), let scheme = root.scheme?.lowercased(), scheme == "http" || scheme == "https",
              root.host != nil else {
            throw RPCError(code: .invalidArgument,
                           message: "only http and https URLs can be listed (object storage and HDFS are not supported): \(LogRedaction.url(request.url))")
        }
        let headers = request.requestHeader
        let work: @Sendable () async throws -> Dfdaemon_V2_ListTaskEntriesResponse = {
            root.path.isEmpty || !request.url.hasSuffix("/")
                ? try await self.statForListing(request.url, headers: headers)
                : try await self.listDirectory(root, headers: headers)
        }
        do {
            guard let limit = try downloadTimeout(request.timeout) else { return try await work() }
            return try await withTimeout(limit, work)
        } catch is TimeoutError {
            throw RPCError(code: .deadlineExceeded, message: "listing \(LogRedaction.url(request.url)) took longer than its timeout")
        } catch let error as OriginError {
            throw error.refused ? RPCError(code: .permissionDenied, message: error.message) : backendError(error)
        }
    }

    private func statForListing(_ url: String, headers: [String: String]) async throws -> Dfdaemon_V2_ListTaskEntriesResponse {
        let info = try await origin.head(url, headers: headers)
        var response = Dfdaemon_V2_ListTaskEntriesResponse()
        response.contentLength = info.contentLength
        response.responseHeader = info.headers
        response.statusCode = 200
        return response
    }

    private func listDirectory(_ root: URL, headers: [String: String]) async throws -> Dfdaemon_V2_ListTaskEntriesResponse {
        var pending = [root]
        var visited = Set<String>([root.absoluteString])
        var files: [String] = []
        var directories: [String] = []
        var rootHeaders: [String: String] = [:]
        var pages = 0
        while !pending.isEmpty {
            try Task.checkCancellation()
            let page = pending.removeFirst()
            pages += 1
            guard pages <= Self.maxIndexPages else {
                throw RPCError(code: .resourceExhausted, message: "\(LogRedaction.url(root.absoluteString)) has more than \(Self.maxIndexPages) directories")
            }
            let answer = try await origin.page(page.absoluteString, headers: headers, maxBytes: Self.maxIndexPageBytes)
            guard answer.status == 200 else {
                throw RPCError(code: answer.status == 404 ? .notFound : .unavailable,
                               message: "listing \(LogRedaction.url(page.absoluteString)): the origin answered \(answer.status)")
            }
            if page == root { rootHeaders = answer.headers }
            let type = answer.headers.first { $0.key.lowercased() == "content-type" }?.value.lowercased() ?? "text/html"
            guard type.hasPrefix("text/html") || type.hasPrefix("application/xhtml") else {
                throw RPCError(code: .failedPrecondition,
                               message: "\(LogRedaction.url(page.absoluteString)) is not a directory index (\(type))")
            }
            // Links resolve against the page as served (a redirect to the slashed URL).
            let base = URL(string: answer.finalURL) ?? page
            let html = String(decoding: answer.body, as: UTF8.self)
            for entry in DirectoryIndex.entries(of: base, html: html, under: root) {
                let text = entry.absoluteString
                guard visited.insert(text).inserted else { continue }
                if text.hasSuffix("/") {
                    directories.append(text)
                    pending.append(entry)
                } else {
                    files.append(text)
                }
                guard files.count + directories.count <= Self.maxListedEntries else {
                    throw RPCError(code: .resourceExhausted,
                                   message: "\(LogRedaction.url(root.absoluteString)) lists more than \(Self.maxListedEntries) entries")
                }
            }
        }
        var response = Dfdaemon_V2_ListTaskEntriesResponse()
        response.responseHeader = rootHeaders
        response.statusCode = 200
        response.entries = directories.map { url in Dfdaemon_V2_Entry.with { $0.url = url; $0.isDir = true } }
            + files.map { url in Dfdaemon_V2_Entry.with { $0.url = url } }
        return response
    }
}
