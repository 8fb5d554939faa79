import Foundation
import ManagerCore
import Preheating

/// A preheat job's `args`, as Dragonfly's API defines them.
struct PreheatArguments: Sendable {
    enum Kind: String, Sendable { case image, file }
    enum Scope: String, Sendable { case singleSeedPeer = "single_seed_peer", allSeedPeers = "all_seed_peers", allPeers = "all_peers" }

    var kind: Kind
    var urls: [String]
    var scope: Scope
    var headers: [String: String]
    var username: String?
    var password: String?
    var platform: String
    var tag: String?
    var application: String?
    var filteredQueryParams: [String]
    var pieceLength: UInt64?
    /// An image's blobs are tasks named by their digests, as the dfdaemons' mirrors name
    /// them by default, so a pull after the preheat finds them (`false` for mirrors that
    /// name tasks by URL).
    var taskIDBasedBlobDigest: Bool
    var concurrentTaskCount: Int
    var timeout: Duration
    /// Only peers with these IPs (empty: any).
    var ips: [String]
    /// For `all_peers`: at most this many peers, or this share of them.
    var count: Int?
    var percentage: Double?

    init(_ args: JSONValue) throws {
        func string(_ key: String) -> String? { args[key]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } }
        guard let kind = Kind(rawValue: string("type") ?? "image") else { throw ManagerError(.invalid, "args.type must be image or file") }
        self.kind = kind
        urls = (string("url").map { [$0] } ?? []) + (args["urls"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        guard !urls.isEmpty else { throw ManagerError(.invalid, "args.url (or urls) is required") }
        guard urls.count <= 1000 else { throw ManagerError(.invalid, "args.urls has more than 1000 entries") }
        for url in urls { try Self.checkURL(url, kind: kind) }
        guard let scope = Scope(rawValue: string("scope") ?? "single_seed_peer") else {
            throw ManagerError(.invalid, "args.scope must be single_seed_peer, all_seed_peers or all_peers")
        }
        self.scope = scope
        var headers: [String: String] = [:]
        if case .object(let h)? = args["headers"] { for (k, v) in h { if let v = v.stringValue { headers[k] = v } } }
        try Self.checkHeaders(headers)
        self.headers = headers
        username = string("username")
        password = args["password"]?.stringValue
        platform = string("platform") ?? "linux/amd64"
        tag = string("tag")
        application = string("application")
        filteredQueryParams = string("filtered_query_params").map { $0.split(separator: "&").map(String.init) }
            ?? (args["filtered_query_params"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        // JSON numbers are doubles of any size: each is bounded before it becomes an integer,
        // which would trap on 1e20.
        if let length = args["piece_length"]?.numberValue, length > 0 {
            guard let exact = UInt64(exactly: length) else { throw ManagerError(.invalid, "args.piece_length must be a whole number of bytes") }
            pieceLength = exact
        } else {
            pieceLength = nil
        }
        taskIDBasedBlobDigest = args["enable_task_id_based_blob_digest"]?.boolValue ?? (kind == .image)
        concurrentTaskCount = Int(max(1, min(64, args["concurrent_task_count"]?.numberValue ?? 8)))
        ips = args["ips"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if let wanted = args["count"]?.numberValue {
            guard wanted >= 1 else { throw ManagerError(.invalid, "args.count must be at least 1") }
            count = Int(min(wanted, 1_000_000))
        } else {
            count = nil
        }
        percentage = args["percentage"]?.numberValue
        if let percentage, !(percentage > 0 && percentage <= 100) { throw ManagerError(.invalid, "args.percentage must be in (0, 100]") }
        let seconds = args["timeout"]?.numberValue ?? 1800
        timeout = .seconds(max(1, min(seconds, 86_400)))
    }

    static func checkURL(_ url: String, kind: Kind) throws {
        if let refusal = PreheatChecks.refusal(url: url, isImage: kind == .image) { throw ManagerError(.invalid, "args.url: \(refusal)") }
    }

    static func checkHeaders(_ headers: [String: String]) throws {
        if let refusal = PreheatChecks.refusal(headers: headers) { throw ManagerError(.invalid, "args.headers: \(refusal)") }
    }
}
