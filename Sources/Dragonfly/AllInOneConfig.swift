import DragonflyCommon
import Foundation
import ManagerNode
import PeerConfig
import SchedulerService

/// One file for the four servers of one machine: a section per component with that
/// component's own keys (`manager:`, `scheduler:`, `seedPeer:`, `dfdaemon:`), and a
/// `dataDir` under which each keeps its files unless its section says otherwise.
/// The wiring between them (who registers where) is not configurable: it is one process.
struct AllInOneConfig {
    var dataDir = "/var/lib/dragonfly"
    var manager = ManagerConfig()
    var scheduler = SchedulerConfig()
    var seedPeer = DaemonConfig()
    var dfdaemon = DaemonConfig()

    /// The seed peer's port when its section does not give one: next to Dragonfly's
    /// 65001-65003, and not one of them.
    static let defaultSeedPeerPort = 65006

    init() {
        seedPeer.port = Self.defaultSeedPeerPort
        seedPeer.seedPeer = true
        seedPeer.unixSocket = nil
    }

    /// The file, if any, over the defaults; `dataDir` (the flag) over the file's.
    static func load(path: String?, dataDir: String?) throws -> AllInOneConfig {
        var c = try path.map(load(path:)) ?? AllInOneConfig()
        if let dataDir { c.dataDir = dataDir }
        c.placeData()
        return c
    }

    private static func load(path: String) throws -> AllInOneConfig {
        let y = try YAMLConfig(path: path)
        var c = AllInOneConfig()
        if let v = try y.string("dataDir") { c.dataDir = v }
        if let s = try y.section("manager") { c.manager = try ManagerConfig.load(s) }
        if let s = try y.section("scheduler") { c.scheduler = try SchedulerConfig.load(s) }
        if let s = try y.section("seedPeer") {
            c.seedPeer = try DaemonConfig.load(s)
            if try s.string("server.listen") == nil { c.seedPeer.port = Self.defaultSeedPeerPort }
            // dfget talks to the dfdaemon; the seed peer gets a socket only when asked.
            if try s.string("download.server.socketPath") == nil { c.seedPeer.unixSocket = nil }
            c.seedPeer.seedPeer = true
        }
        if let s = try y.section("dfdaemon") {
            c.dfdaemon = try DaemonConfig.load(s)
            guard !c.dfdaemon.seedPeer else { throw ConfigError("\(path): dfdaemon.seedPeer.enable: the seed peer has a section of its own") }
        }
        try y.rejectUnknownKeys()
        guard c.seedPeer.port != c.dfdaemon.port || c.seedPeer.port == 0 else {
            throw ConfigError("\(path): seedPeer and dfdaemon both listen on port \(c.dfdaemon.port)")
        }
        return c
    }

    /// Components left on their stand-alone default directory get one under `dataDir`.
    private mutating func placeData() {
        let root = dataDir
        let under = { (name: String) in (root as NSString).appendingPathComponent(name) }
        if manager.dataDir == ManagerConfig().dataDir { manager.dataDir = under("manager") }
        if scheduler.dataDir == SchedulerConfig().dataDir { scheduler.dataDir = under("scheduler") }
        if seedPeer.dataDir == DaemonConfig().dataDir { seedPeer.dataDir = under("seed-peer") }
        if dfdaemon.dataDir == DaemonConfig().dataDir { dfdaemon.dataDir = under("dfdaemon") }
    }

    /// The address the other components use to reach one listening on `ip`.
    static func localAddress(_ ip: String, _ port: Int) -> String {
        let host = (ip == "0.0.0.0" || ip.isEmpty) ? "127.0.0.1" : (ip == "::" ? "::1" : ip)
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
