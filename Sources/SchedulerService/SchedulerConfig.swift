import DragonflyCommon
import SchedulerCore

/// Everything `scheduler` can be configured with; YAML keys follow Dragonfly's scheduler
/// config (`server.port`, `scheduler.retryLimit`, `scheduler.gc.peerTTL`, `manager.addr`…).
public struct SchedulerConfig: Sendable {
    public var listenIP = "0.0.0.0"
    public var port = 65002
    public var advertiseIP = "127.0.0.1"
    public var advertisePort: Int?
    public var hostname = "scheduler"
    public var metricsIP = "0.0.0.0"
    public var metricsPort = 8002
    public var dataDir = "/var/lib/dragonfly/scheduler"
    public var algorithm = "default"
    public var settings = SchedulerSettings()
    public var managerAddress: String?
    public var schedulerClusterID: UInt64 = 1
    public var keepAliveInterval: Duration = .seconds(5)
    /// Presented to the manager to register (manager.registrationSecret); nil falls back to
    /// $DRAGONFLY_REGISTRATION_SECRET.
    public var managerRegistrationSecret: String?
    public var idc: String?
    public var rpcLimits = RPCLimits()
    public var tls = TLSFiles()
    public var location: String?

    public init() {}

    /// Reads a YAML file over the defaults; unknown keys are an error naming the key.
    public static func load(path: String) throws -> SchedulerConfig {
        try load(YAMLConfig(path: path))
    }

    public static func load(_ y: YAMLConfig) throws -> SchedulerConfig {
        let path = y.path
        var c = SchedulerConfig()
        if let v = try y.string("server.listenIP") { c.listenIP = v }
        if let v = try y.int("server.port") { c.port = v }
        if let v = try y.string("server.advertiseIP") { c.advertiseIP = v }
        if let v = try y.int("server.advertisePort") { c.advertisePort = v }
        if let v = try y.string("server.host") { c.hostname = v }
        if let v = try y.string("server.dataDir") { c.dataDir = v }
        if let v = try y.string("server.logLevel") { _ = v }
        if let v = try y.string("metrics.addr") {
            let (host, port) = try parseListen(v, key: "metrics.addr")
            c.metricsIP = host
            c.metricsPort = port
        }
        if let v = try y.bool("metrics.enable") { _ = v }
        if let v = try y.string("scheduler.algorithm") {
            guard v == "default" else { throw ConfigError("\(path): scheduler.algorithm \(v) is not supported (only default)") }
            c.algorithm = v
        }
        var s = c.settings
        if let v = try y.int("scheduler.backToSourceCount") { s.backToSourceCount = v }
        if let v = try y.int("scheduler.retryBackToSourceLimit") { s.retryBackToSourceLimit = v }
        if let v = try y.int("scheduler.retryLimit") { s.retryLimit = v }
        if let v = try y.duration("scheduler.retryInterval") { s.retryInterval = v }
        // Both spellings: under scheduler (the product spec) and under scheduler.gc (upstream).
        if let v = try y.duration("scheduler.pieceDownloadTimeout") { s.pieceDownloadTimeout = v }
        if let v = try y.duration("scheduler.gc.pieceDownloadTimeout") { s.pieceDownloadTimeout = v }
        if let v = try y.duration("scheduler.gc.peerGCInterval") { s.peerGCInterval = v }
        if let v = try y.duration("scheduler.gc.peerTTL") { s.peerTTL = v }
        if let v = try y.duration("scheduler.gc.taskGCInterval") { s.taskGCInterval = v }
        if let v = try y.duration("scheduler.gc.hostGCInterval") { s.hostGCInterval = v }
        if let v = try y.duration("scheduler.gc.hostTTL") { s.hostTTL = v }
        if let v = try y.int("scheduler.candidateParentLimit") { s.candidateParentLimit = v }
        if let v = try y.int("scheduler.filterParentLimit") { s.filterParentLimit = v }
        c.settings = s
        if let v = try y.string("manager.addr"), !v.isEmpty { c.managerAddress = v }
        if let v = try y.int("manager.schedulerClusterID") { c.schedulerClusterID = UInt64(max(1, v)) }
        if let v = try y.duration("manager.keepAlive.interval") { c.keepAliveInterval = v }
        if let v = try y.string("manager.registrationSecret"), !v.isEmpty { c.managerRegistrationSecret = v }
        if let v = try y.string("host.idc") { c.idc = v }
        if let v = try y.string("host.location") { c.location = v }
        try c.rpcLimits.load(y)
        try c.tls.load(y)
        try y.rejectUnknownKeys()
        try c.validate()
        return c
    }

    public func validate() throws {
        let s = settings
        guard (0...65535).contains(port) else { throw ConfigError("server.port \(port) is out of range") }
        // The manager is told this port as an Int32, which would trap on a larger number.
        if let p = advertisePort, !(0...65535).contains(p) { throw ConfigError("server.advertisePort \(p) is out of range") }
        guard (0...65535).contains(metricsPort) else { throw ConfigError("metrics.addr port \(metricsPort) is out of range") }
        guard s.backToSourceCount > 0 else { throw ConfigError("scheduler.backToSourceCount must be positive") }
        guard s.retryBackToSourceLimit > 0 else { throw ConfigError("scheduler.retryBackToSourceLimit must be positive") }
        guard s.retryLimit > 0 else { throw ConfigError("scheduler.retryLimit must be positive") }
        guard s.retryInterval > .zero else { throw ConfigError("scheduler.retryInterval must be positive") }
        guard (1...20).contains(s.candidateParentLimit) else { throw ConfigError("scheduler.candidateParentLimit must be 1..20") }
    }

    /// ":8002", "127.0.0.1:8002" or "8002".
    static func parseListen(_ text: String, key: String) throws -> (String, Int) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard let portText = parts.last, let port = Int(portText), (0...65535).contains(port) else {
            throw ConfigError("\(key) \(text) is not [host]:port")
        }
        let host = parts.count > 1 ? parts.dropLast().joined(separator: ":") : ""
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}
