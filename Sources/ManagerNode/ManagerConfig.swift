import DragonflyCommon
import Foundation

/// The manager's configuration; YAML keys follow Dragonfly's manager config where it has
/// them (`server.grpc`, `server.rest`, `database`, `auth.jwt`).
public struct ManagerConfig: Sendable {
    public var listenIP = "0.0.0.0"
    public var grpcPort = 65003
    public var restPort = 8080
    public var dataDir = "/var/lib/dragonfly/manager"
    /// `postgres://…`; nil means the SQLite file `manager.db` in `dataDir`.
    public var databaseURL: String?
    public var rpcLimits = RPCLimits()
    public var tls = TLSFiles()
    /// The REST side: a connection idle this long is closed; header blocks over
    /// `restMaxHeaderBytes` are refused by the parser.
    public var restIdleTimeout: Duration = .seconds(60)
    public var restMaxHeaderBytes = 32 << 10
    public var jwtKey: String?
    public var jwtTimeout: Duration = .seconds(2 * 24 * 3600)
    /// An instance silent this long is marked inactive even if its stream never closed.
    public var keepAliveTimeout: Duration = .seconds(60)
    /// What schedulers and seed peers present to register (`security.registrationSecret`).
    /// Not needed when gRPC is served with mutual TLS; without either, registration is
    /// refused unless `openRegistration` says anyone may.
    public var registrationSecret: String?
    public var openRegistration = false
    /// Where the manager, schedulers and seed peers look when no flag or key names the
    /// secret: an environment variable stays out of the process list.
    public static let registrationSecretVariable = "DRAGONFLY_REGISTRATION_SECRET"

    public init() {}

    public static func load(path: String) throws -> ManagerConfig {
        try load(YAMLConfig(path: path))
    }

    /// Reads parsed YAML over the defaults; unknown keys are an error naming the key.
    public static func load(_ y: YAMLConfig) throws -> ManagerConfig {
        let path = y.path
        var c = ManagerConfig()
        if let v = try y.int("server.grpc.port.start") ?? y.int("server.grpc.port") { c.grpcPort = v }
        if let v = try y.string("server.grpc.listenIP") { c.listenIP = v }
        if let v = try y.string("server.rest.addr") {
            guard let port = Int(v.split(separator: ":").last ?? "") else { throw ConfigError("\(path): server.rest.addr must be [ip]:port") }
            c.restPort = port
        }
        if let v = try y.string("server.dataDir") { c.dataDir = v }
        switch try y.string("database.type") ?? "sqlite" {
        case "sqlite":
            if let v = try y.string("database.sqlite.dir") { c.dataDir = v }
        case "postgres":
            if let url = try y.string("database.postgres.url") {
                c.databaseURL = url
            } else {
                let host = try y.string("database.postgres.host") ?? "127.0.0.1"
                let port = try y.int("database.postgres.port") ?? 5432
                guard let user = try y.string("database.postgres.user"), let name = try y.string("database.postgres.dbname") else {
                    throw ConfigError("\(path): database.postgres needs url, or user and dbname")
                }
                let password = try y.string("database.postgres.password").map { ":" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0) } ?? ""
                let ssl = try y.string("database.postgres.sslMode") ?? "disable"
                c.databaseURL = "postgres://\(user)\(password)@\(host):\(port)/\(name)?sslmode=\(ssl)"
            }
        case let other:
            throw ConfigError("\(path): database.type \(other) is not sqlite or postgres")
        }
        if let v = try y.string("auth.jwt.key") { c.jwtKey = v }
        if let v = try y.duration("auth.jwt.timeout") { c.jwtTimeout = v }
        if let v = try y.duration("keepAlive.timeout") { c.keepAliveTimeout = v }
        if let v = try y.string("security.registrationSecret"), !v.isEmpty { c.registrationSecret = v }
        if let v = try y.bool("security.openRegistration") { c.openRegistration = v }
        try c.rpcLimits.load(y)
        try c.tls.load(y)
        if let v = try y.duration("server.rest.idleTimeout") {
            guard v > .zero else { throw ConfigError("\(path): server.rest.idleTimeout must be positive") }
            c.restIdleTimeout = v
        }
        if let v = try y.int("server.rest.maxHeaderBytes") {
            guard (1024...(80 << 10)).contains(v) else { throw ConfigError("\(path): server.rest.maxHeaderBytes must be in 1024...81920") }
            c.restMaxHeaderBytes = v
        }
        try y.rejectUnknownKeys()
        return c
    }
}
