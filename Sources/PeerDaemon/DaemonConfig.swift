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

    public init() {}

    public static func load(path: String) throws -> DaemonConfig {
        let y = try YAMLConfig(path: path)
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
        if let v = try y.strings("scheduler.addrs") { c.schedulers = v }
        if let v = try y.strings("scheduler.manager.netAddrs") { c.managerAddress = v.first }
        if let v = try y.string("manager.addr") { c.managerAddress = v.isEmpty ? nil : v }
        if let v = try y.duration("scheduler.announceInterval") { c.announceInterval = v }
        if let v = try y.bool("seedPeer.enable") { c.seedPeer = v }
        if let v = try y.int("download.pieceSize") { c.pieceLength = UInt64(v) }
        if let v = try y.int("download.concurrentPieceCount") { c.concurrentPieceCount = max(1, v) }
        if let v = try y.duration("download.pieceTimeout") { c.pieceTimeout = v }
        if let v = try y.string("host.ip") { c.ip = v }
        if let v = try y.string("host.hostname") { c.hostname = v }
        if let v = try y.string("host.idc") { c.idc = v }
        if let v = try y.string("host.location") { c.location = v }
        try y.rejectUnknownKeys()
        return c
    }

    public var hostID: String { PeerIdentity.hostID(ip: ip, hostname: hostname, seed: seedPeer) }
}
