import DragonflyCommon
import Foundation

/// The dfdaemon's configuration; YAML keys follow Dragonfly's dfdaemon config.
public struct DaemonConfig: Sendable {
    public var listenIP = "0.0.0.0"
    public var port = 65001
    public var unixSocket: String? = "/var/run/dragonfly/dfdaemon.sock"
    public var dataDir = "/var/lib/dragonfly/dfdaemon"
    public var schedulers: [String] = []
    public var managerAddress: String?
    /// How often the manager is asked for schedulers (scheduler.manager.refreshInterval).
    public var schedulerRefreshInterval: Duration = .seconds(10)
    /// The seed peer cluster a seed peer registers in (seedPeer.clusterID).
    public var seedPeerClusterID: UInt64 = 1
    /// How often a seed peer tells the manager it is alive (seedPeer.keepAlive.interval).
    public var keepAliveInterval: Duration = .seconds(5)
    /// What a seed peer presents to the manager to register (manager.registrationSecret);
    /// nil falls back to $DRAGONFLY_REGISTRATION_SECRET.
    public var managerRegistrationSecret: String?
    public var seedPeer = false
    public var ip = "127.0.0.1"
    public var hostname = ProcessInfo.processInfo.hostName
    public var idc = ""
    public var location = ""
    public var pieceLength: UInt64?
    public var concurrentPieceCount = 8
    public var pieceTimeout: Duration = .seconds(120)
    public var announceInterval: Duration = .seconds(30)
    public var taskExpireTime: Duration = .seconds(6 * 3600)
    /// Bytes/s; 0 is unlimited. All downloads of this daemon together (`download.totalRateLimit`).
    public var totalDownloadRateLimit: Double = 0
    /// Each task's download (`download.perPeerRateLimit`: per peer task, as upstream means it).
    public var perTaskDownloadRateLimit: Double = 0
    /// The most an origin that announces no length (chunked) may send for one task
    /// (`download.maxUnknownContentLength`): its body is spooled to disk before it becomes
    /// pieces, so an endless body must end somewhere.
    public var maxUnknownContentLength: UInt64 = 16 << 30
    /// All uploads of this daemon together, piece stream and Vortex alike (`upload.rateLimit`).
    public var uploadRateLimit: Double = 0
    /// What the scheduler is told this host can send, bits/s (`upload.bandwidth`); without
    /// it, `upload.rateLimit` when set, else 10 Gbit/s.
    public var uploadBandwidth: Double?
    /// Children (hosts) served at once; one more gets RESOURCE_EXHAUSTED and looks elsewhere.
    public var concurrentUploadLimit = 50
    /// Hosts this daemon may fetch from (empty: any).
    public var allowedOrigins = OriginAllowList()
    /// Which addresses origins may have (`download.refusePrivateOrigins`,
    /// `download.allowLinkLocalOrigins`).
    public var originAddresses = OriginAddressPolicy()
    /// The one policy for every URL this daemon fetches.
    public var originPolicy: OriginPolicy { OriginPolicy(allowList: allowedOrigins, addresses: originAddresses) }
    /// Where local clients may have finished downloads written (`download.allowedOutputDirs`).
    public var allowedOutputDirs = ["/tmp", "/var/tmp", "/home", "/root", "/mnt", "/data"]
    /// Serve `dfdaemon.v2.DfdaemonDownload` (it writes files and deletes tasks) on the TCP
    /// port too (`download.server.allowTCP`); only with mutual TLS. Otherwise it is on the
    /// unix socket alone, as upstream serves it.
    public var downloadOverTCP = false
    public var backToSourceRateLimit: Double = 0
    /// GC starts freeing least recently used tasks when the store holds more than this.
    public var diskGCThreshold: UInt64?
    /// ...or when the file system is fuller than this percentage.
    public var diskGCThresholdPercent: Double?
    public var gcInterval: Duration = .seconds(60)
    /// Piece content written, and read for uploads, past the page cache (`storage.directIO`;
    /// our own key). Off, the page cache holds recent pieces: better on a slow disk that
    /// serves many children, worse where fresh cache pages are dear (a VM's balloon).
    public var storageDirectIO = true
    public var proxy = ProxyConfig()
    public var rpcLimits = RPCLimits()
    public var tls = TLSFiles()
    /// The HTTP/1.1 side of the port (mirror, /metrics): `http.*`, each nil where the
    /// server's own default stands.
    public var httpLimits = HTTPLimitSettings()
    /// The Vortex TCP port other peers fetch piece bytes from (`storage.server.tcpPort`);
    /// 0 lets the OS choose, which works because the port is advertised in SyncPieces; nil
    /// (`-1` in the file) turns the Vortex server off.
    public var vortexPort: Int? = 0
    /// How this peer fetches piece bytes from parents (`download.protocol`): `grpc` uses our
    /// piece stream and falls back to Vortex for a parent without it (a Rust dfdaemon); `tcp`
    /// uses Vortex with every parent that advertises a port.
    public var downloadProtocol = PieceProtocol.grpc

    public enum PieceProtocol: String, Sendable {
        case grpc, tcp
    }

    /// With TLS on the shared port, the HTTP/1.1 side (mirror, /metrics) listens here
    /// in plaintext instead (`http.port`); nil turns it off in that case.
    public var httpPort: Int?

    public init() {}

    public static func load(path: String) throws -> DaemonConfig {
        try load(YAMLConfig(path: path))
    }

    /// Reads parsed YAML over the defaults; unknown keys are an error naming the key.
    public static func load(_ y: YAMLConfig) throws -> DaemonConfig {
        let path = y.path
        var c = DaemonConfig()
        if let v = try y.string("server.listen") {
            if let port = Int(v) { c.port = port } else {
                let parts = v.split(separator: ":")
                guard parts.count == 2, let port = Int(parts[1]) else { throw ConfigError("\(path): server.listen must be [ip:]port") }
                c.listenIP = String(parts[0])
                c.port = port
            }
        }
        if let v = try y.string("download.server.socketPath") { c.unixSocket = v.isEmpty ? nil : v }
        if let v = try y.string("storage.dir") { c.dataDir = v }
        if let v = try y.duration("storage.taskExpireTime") { c.taskExpireTime = v }
        if let v = try y.bool("storage.directIO") { c.storageDirectIO = v }
        if let v = try y.strings("scheduler.addrs") { c.schedulers = v }
        if let v = try y.strings("scheduler.manager.netAddrs") { c.managerAddress = v.first }
        if let v = try y.duration("scheduler.manager.refreshInterval") { c.schedulerRefreshInterval = v }
        if let v = try y.string("manager.addr") { c.managerAddress = v.isEmpty ? nil : v }
        if let v = try y.string("manager.registrationSecret"), !v.isEmpty { c.managerRegistrationSecret = v }
        if let v = try y.duration("scheduler.announceInterval") { c.announceInterval = v }
        if let v = try y.bool("seedPeer.enable") { c.seedPeer = v }
        if let v = try y.int("seedPeer.clusterID") { c.seedPeerClusterID = UInt64(max(1, v)) }
        if let v = try y.duration("seedPeer.keepAlive.interval") { c.keepAliveInterval = v }
        if let v = try y.int("download.pieceSize") {
            let range = Int(PieceLayout.allowedPieceLengths.lowerBound)...Int(PieceLayout.allowedPieceLengths.upperBound)
            c.pieceLength = UInt64(try bounded(v, range, "download.pieceSize", path))
        }
        if let v = try y.int("download.concurrentPieceCount") { c.concurrentPieceCount = max(1, v) }
        if let v = try y.duration("download.pieceTimeout") { c.pieceTimeout = v }
        if let v = try y.string("download.totalRateLimit") { c.totalDownloadRateLimit = try rate(v, "download.totalRateLimit", path) }
        if let v = try y.string("download.perPeerRateLimit") { c.perTaskDownloadRateLimit = try rate(v, "download.perPeerRateLimit", path) }
        if let v = try y.string("download.maxUnknownContentLength") {
            let bytes = try rate(v, "download.maxUnknownContentLength", path)
            guard bytes >= 1, bytes < 0x1p62 else { throw ConfigError("\(path): download.maxUnknownContentLength must be at least 1 byte") }
            c.maxUnknownContentLength = UInt64(bytes)
        }
        if let v = try y.strings("download.allowedOrigins") { c.allowedOrigins = OriginAllowList(v) }
        if let v = try y.bool("download.refusePrivateOrigins") { c.originAddresses.refusePrivate = v }
        if let v = try y.bool("download.allowLinkLocalOrigins") { c.originAddresses.allowLinkLocal = v }
        if let v = try y.strings("download.allowedOutputDirs") {
            guard v.allSatisfy({ $0.hasPrefix("/") && !$0.split(separator: "/").contains("..") }) else {
                throw ConfigError("\(path): download.allowedOutputDirs must be absolute directories")
            }
            c.allowedOutputDirs = v
        }
        if let v = try y.bool("download.server.allowTCP") { c.downloadOverTCP = v }
        if let v = try y.int("upload.concurrentLimit") { c.concurrentUploadLimit = try bounded(v, 1...100_000, "upload.concurrentLimit", path) }
        if let v = try y.string("upload.rateLimit") { c.uploadRateLimit = try rate(v, "upload.rateLimit", path) }
        if let v = try y.string("upload.bandwidth") { c.uploadBandwidth = try rate(v, "upload.bandwidth", path) }
        if let v = try y.string("download.backToSourceRateLimit") { c.backToSourceRateLimit = try rate(v, "download.backToSourceRateLimit", path) }
        if let v = try y.string("storage.diskGCThreshold") { c.diskGCThreshold = UInt64(clamping: Int64(min(try rate(v, "storage.diskGCThreshold", path), 1e18))) }
        if let v = try y.int("storage.diskGCThresholdPercent") { c.diskGCThresholdPercent = Double(try bounded(v, 1...100, "storage.diskGCThresholdPercent", path)) }
        if let v = try y.duration("gc.interval") { c.gcInterval = v }
        if let v = try y.string("host.ip") { c.ip = v }
        if let v = try y.string("host.hostname") { c.hostname = v }
        if let v = try y.string("host.idc") { c.idc = v }
        if let v = try y.string("host.location") { c.location = v }
        if let v = try y.int("storage.server.tcpPort") { c.vortexPort = v == -1 ? nil : try bounded(v, 0...65535, "storage.server.tcpPort", path) }
        if let v = try y.string("download.protocol") {
            guard let p = PieceProtocol(rawValue: v) else { throw ConfigError("\(path): download.protocol must be grpc or tcp, not \(v)") }
            c.downloadProtocol = p
        }
        try c.proxy.load(y)
        try c.rpcLimits.load(y)
        try c.tls.load(y)
        if let v = try y.int("http.port") { c.httpPort = try bounded(v, 0...65535, "http.port", path) }
        if let v = try y.int("http.maxURILength") { c.httpLimits.maxURILength = try bounded(v, 256...(64 << 10), "http.maxURILength", path) }
        if let v = try y.int("http.maxHeaderBytes") { c.httpLimits.maxHeaderBytes = try bounded(v, 1024...(64 << 10), "http.maxHeaderBytes", path) }
        if let v = try y.int("http.maxBodyBytes") { c.httpLimits.maxBodyBytes = try bounded(v, 0...(1 << 30), "http.maxBodyBytes", path) }
        if let v = try y.duration("http.requestTimeout") {
            guard v > .zero else { throw ConfigError("\(path): http.requestTimeout must be positive") }
            c.httpLimits.requestTimeout = v
        }
        try y.rejectUnknownKeys()
        try c.checkDownloadOverTCP(path)
        return c
    }

    /// The download service writes files as the daemon's user: over TCP only to clients
    /// that prove who they are.
    public func checkDownloadOverTCP(_ path: String) throws {
        guard downloadOverTCP else { return }
        guard tls.cert != nil, tls.key != nil, tls.caCert != nil else {
            throw ConfigError("\(path): download.server.allowTCP needs mutual TLS (tls.cert, tls.key and tls.caCert)")
        }
    }

    /// "8Mi", "100MB", "1Gi" or plain bytes.
    public static func parseBytes(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("Ki", 1024), ("Mi", 1_048_576), ("Gi", 1_073_741_824), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9),
                                         ("K", 1024), ("M", 1_048_576), ("G", 1_073_741_824)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            return Double(t.dropLast(suffix.count)).map { $0 * scale }
        }
        return Double(t)
    }

    static func bounded(_ v: Int, _ range: ClosedRange<Int>, _ key: String, _ path: String) throws -> Int {
        guard range.contains(v) else { throw ConfigError("\(path): \(key) must be in \(range.lowerBound)...\(range.upperBound)") }
        return v
    }

    static func rate(_ text: String, _ key: String, _ path: String) throws -> Double {
        guard let v = parseBytes(text), v >= 0 else { throw ConfigError("\(path): \(key) must be a size like 8Mi or 100MB") }
        return v
    }

    public var hostID: String { PeerIdentity.hostID(ip: ip, hostname: hostname, seed: seedPeer) }
}
