/// The `rpc:` section every component's config shares: limits on what one client may
/// make its gRPC server hold. Each has a default; each can be lowered or raised.
public struct RPCLimits: Sendable, Equatable {
    public var maxConcurrentStreams: UInt32 = 100
    public var maxHeaderListSize: UInt32 = 16 << 10
    public var maxFrameSize: UInt32 = 16 << 10
    public var initialWindowSize: UInt32 = 1 << 20
    public var connectionWindowSize: UInt32 = 16 << 20
    public var maxReceiveMessageSize: Int = 4 << 20
    public var handshakeTimeout: Duration? = .seconds(10)
    /// A connection with no call for this long gets GOAWAY and is closed.
    public var idleTimeout: Duration? = .seconds(300)
    /// Server PINGs at this interval; no answer within `keepaliveTimeout` closes the connection.
    public var keepaliveInterval: Duration? = .seconds(120)
    public var keepaliveTimeout: Duration = .seconds(20)
    /// Connections at once from one IP address (nil: no limit). A node keeps a handful; 1024
    /// leaves room for a NAT or proxy in front of many nodes and for test_load.py's 200
    /// short-lived loopback clients (up to ~370 open at once on a busy machine, as closes
    /// lag), while a flood from one address stops at ~20 MB of connection state.
    public var maxConnectionsPerIP: Int? = 1024
    /// Connections at once in all; nil: the open-file limit less a tenth.
    public var maxConnections: Int?
    /// Calls per second per service (nil: unlimited), with bursts of `requestBurst`.
    public var requestRateLimit: Double?
    public var requestBurst: Double = 100

    public init() {}

    /// Reads `rpc.*` over the defaults. A duration of 0 turns that timeout off.
    public mutating func load(_ y: YAMLConfig) throws {
        func positive(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let v = try y.int("rpc.\(key)") else { return nil }
            guard range.contains(v) else { throw ConfigError("\(y.path): rpc.\(key) must be in \(range.lowerBound)...\(range.upperBound)") }
            return v
        }
        if let v = try positive("maxConcurrentStreams", 1...100_000) { maxConcurrentStreams = UInt32(v) }
        if let v = try positive("maxHeaderListSize", 1024...(16 << 20)) { maxHeaderListSize = UInt32(v) }
        if let v = try positive("maxFrameSize", (16 << 10)...((16 << 20) - 1)) { maxFrameSize = UInt32(v) }
        if let v = try positive("initialWindowSize", 1...Int(Int32.max)) { initialWindowSize = UInt32(v) }
        if let v = try positive("connectionWindowSize", (64 << 10)...Int(Int32.max)) { connectionWindowSize = UInt32(v) }
        if let v = try positive("maxReceiveMessageSize", 1...(1 << 30)) { maxReceiveMessageSize = v }
        if let v = try y.duration("rpc.handshakeTimeout") { handshakeTimeout = v > .zero ? v : nil }
        if let v = try y.duration("rpc.idleTimeout") { idleTimeout = v > .zero ? v : nil }
        if let v = try y.duration("rpc.keepaliveInterval") { keepaliveInterval = v > .zero ? v : nil }
        if let v = try y.duration("rpc.keepaliveTimeout") {
            guard v > .zero else { throw ConfigError("\(y.path): rpc.keepaliveTimeout must be positive") }
            keepaliveTimeout = v
        }
        // 0 turns the per-address limit off, as it does the timeouts.
        if let v = try y.int("rpc.maxConnectionsPerIP") {
            guard (0...10_000_000).contains(v) else { throw ConfigError("\(y.path): rpc.maxConnectionsPerIP must be in 0...10000000") }
            maxConnectionsPerIP = v > 0 ? v : nil
        }
        if let v = try positive("maxConnections", 1...10_000_000) { maxConnections = v }
        if let v = try positive("requestRateLimit", 1...10_000_000) { requestRateLimit = Double(v) }
        if let v = try positive("requestBurst", 1...10_000_000) { requestBurst = Double(v) }
    }
}
