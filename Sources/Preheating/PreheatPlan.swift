import GeneratedAPI

/// What a preheat fetches and where: the downloads (an image's blobs, or files), the
/// fields every download shares, and how the target peers are chosen. Built from the
/// manager's job arguments or from a scheduler's `PreheatImage`/`PreheatFile` request.
public struct PreheatPlan: Sendable {
    public enum Scope: String, Sendable, CaseIterable {
        case singleSeedPeer = "single_seed_peer"
        case allSeedPeers = "all_seed_peers"
        case allPeers = "all_peers"
    }

    /// One thing to fetch: a blob (with its digest) or a file.
    public struct Item: Sendable, Hashable {
        public var url: String
        public var digest: String?
        public init(url: String, digest: String? = nil) {
            self.url = url
            self.digest = digest
        }
    }

    public var items: [Item]
    /// The fields each peer's `DownloadTask` gets besides the URL and digest (tag,
    /// application, filtered query parameters, request headers, piece length, how blob
    /// tasks are named), so the task is the one a later pull asks for.
    public var download: Common_V2_Download
    public var scope: Scope
    public var selection: PeerSelection
    /// Downloads in flight at once, over all peers.
    public var concurrentTaskCount: Int
    public var timeout: Duration

    public init(items: [Item], download: Common_V2_Download, scope: Scope, selection: PeerSelection,
                concurrentTaskCount: Int, timeout: Duration) {
        self.items = items
        self.download = download
        self.scope = scope
        self.selection = selection
        self.concurrentTaskCount = max(1, min(64, concurrentTaskCount))
        self.timeout = timeout
    }

    /// The download a peer is asked for, for one item.
    public func request(for item: Item) -> Common_V2_Download {
        var d = download
        d.url = item.url
        d.digest = item.digest
        return d
    }

    /// Every (item, peer) pair the preheat fetches: one seed peer per item for
    /// `single_seed_peer` (the same one each time), else every chosen peer.
    public func work(on targets: [PreheatTarget]) -> [(item: Item, target: PreheatTarget)] {
        items.flatMap { item in
            let chosen = scope == .singleSeedPeer ? [PeerSelection.rendezvous(item.url, targets)].compactMap { $0 } : targets
            return chosen.map { (item, $0) }
        }
    }
}

/// A dfdaemon a preheat may ask: its upload port's address and who it is.
public struct PreheatTarget: Sendable, Hashable, Comparable {
    public var ip: String
    public var port: Int
    public var hostname: String
    public var isSeed: Bool

    public init(ip: String, port: Int, hostname: String = "", isSeed: Bool) {
        self.ip = ip
        self.port = port
        self.hostname = hostname
        self.isSeed = isSeed
    }

    public var address: String { ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)" }

    public static func < (a: PreheatTarget, b: PreheatTarget) -> Bool { a.address < b.address }
}
