import NIOCore
import NIOPosix
import ConnectionLimits
import Logging
import Locking
import RPCCore

/// Where and how a server listens.
public struct RPCServerConfiguration: Sendable {
    public enum Address: Sendable, CustomStringConvertible {
        case tcp(host: String, port: Int)
        case unix(path: String)
        public var description: String {
            switch self {
            case .tcp(let host, let port): return "\(host):\(port)"
            case .unix(let path): return "unix:\(path)"
            }
        }
    }

    public var address: Address
    public var tls: TLSConfiguration?
    /// Requests larger than this fail with RESOURCE_EXHAUSTED (gRPC's default: 4 MiB).
    public var maxReceiveMessageSize: Int = 4 << 20
    public var maxSendMessageSize: Int = Int(Int32.max)
    public var maxConcurrentStreams: UInt32 = 100
    /// SETTINGS_MAX_HEADER_LIST_SIZE: a larger request header block is answered with
    /// RESOURCE_EXHAUSTED.
    public var maxHeaderListSize: UInt32 = 16 << 10
    /// SETTINGS_MAX_FRAME_SIZE (16 KiB to 16 MiB): a larger frame ends the connection.
    public var maxFrameSize: UInt32 = 16 << 10
    /// Flow-control windows we grant: per stream (SETTINGS_INITIAL_WINDOW_SIZE) and for
    /// the whole connection.
    public var initialWindowSize: UInt32 = 1 << 20
    public var connectionWindowSize: Int32 = 16 << 20
    /// A client must finish its TLS handshake and send the HTTP/2 preface and SETTINGS
    /// within this, or it is dropped (slow-loris clients hold no connection for long).
    public var handshakeTimeout: Duration? = .seconds(10)
    /// A connection with no call open, and none started or ended for this long, is closed
    /// with GOAWAY (PINGs and other control frames do not count as use). Idle connections
    /// otherwise pile up until the process runs out of descriptors. Nil keeps them.
    public var idleTimeout: Duration? = .seconds(300)
    /// Connections open at once from one IP address; one more is closed as soon as it is
    /// accepted. Nil: no per-address limit. Unix-socket clients have no address and are
    /// not counted against it.
    public var maxConnectionsPerIP: Int? = 1024
    /// Connections open at once in all; nil: derived from the open-file limit, leaving a
    /// tenth of it for everything else (see `ConnectionGate.defaultTotal`).
    public var maxConnections: Int?
    /// Calls per second each service accepts (with bursts of `requestBurst`); more are
    /// refused with RESOURCE_EXHAUSTED. Nil: no limit.
    public var requestRateLimit: Double?
    public var requestBurst: Double = 100
    /// Interval of keepalive PINGs to every client; one not acknowledged within
    /// `keepaliveTimeout` closes the connection, so a peer that vanished (no FIN or RST ever
    /// arrives) does not hold it. Nil disables them.
    public var keepaliveInterval: Duration? = .seconds(120)
    public var keepaliveTimeout: Duration = .seconds(20)
    /// Configures a plaintext connection whose first bytes are not the HTTP/2 preface (an
    /// HTTP/1.1 server sharing the port); without it such connections are closed.
    public var otherProtocol: (@Sendable (any Channel) throws -> Void)?

    public init(address: Address, tls: TLSConfiguration? = nil) {
        self.address = address
        self.tls = tls
    }
}

/// A gRPC server over nghttp2: hosts services, routes by path, shuts down gracefully.
public final class RPCServer: Sendable {
    private let router: RPCRouter
    private let configuration: RPCServerConfiguration
    private let logger: Logger
    private let group: any EventLoopGroup
    private let state = Locked(State())
    private let rateLimiter: RequestRateLimiter?
    private let gate: ConnectionGate

    private struct State {
        var channel: (any Channel)?
        var connections: [ObjectIdentifier: ConnectionEntry] = [:]
        var shuttingDown = false
        /// Shutdowns waiting for the last connection to close.
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
    }

    struct ConnectionEntry: Sendable {
        let handler: LoopBoundHandler
        var activeStreams: Int
    }

    public init(services: [any RPCServiceProvider], configuration: RPCServerConfiguration,
                logger: Logger = Logger(label: "rpc.server"),
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.router = RPCRouter(services)
        self.configuration = configuration
        self.logger = logger
        self.group = group
        self.rateLimiter = configuration.requestRateLimit.map { RequestRateLimiter(perSecond: $0, burst: configuration.requestBurst) }
        self.gate = ConnectionGate(perIP: configuration.maxConnectionsPerIP,
                                   total: configuration.maxConnections ?? ConnectionGate.defaultTotal)
    }

    /// Connections open now (admitted and not yet closed).
    public var openConnections: Int { gate.openConnections }

    /// The names of the services this server routes to.
    public var serviceNames: [String] { router.serviceNames }

    /// Binds and starts accepting; returns the bound port (0 for unix sockets).
    @discardableResult
    public func start() async throws -> Int {
        let tlsContext = try configuration.tls.map { try TLSContext(configuration: $0, server: true) }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.configureConnection(channel, tls: tlsContext)
                }
            }
        let channel: any Channel
        switch configuration.address {
        case .tcp(let host, let port):
            channel = try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path):
            channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        }
        state.withLock { $0.channel = channel }
        return channel.localAddress?.port ?? 0
    }

    private func configureConnection(_ channel: any Channel, tls: TLSContext?) throws {
        let ip = channel.remoteAddress?.ipAddress
        if let refusal = gate.admit(ip) {
            // Thrown before any handler exists: NIO closes the socket and nothing else is done.
            logger.debug("refusing a connection: \(refusal)")
            throw refusal
        }
        HeapTrimmer.opened()
        channel.closeFuture.whenComplete { [gate] _ in
            gate.release(ip)
            HeapTrimmer.closed()
        }
        let remote = channel.remoteAddress?.description ?? "unknown"
        let id = ObjectIdentifier(channel)
        let logic = ServerConnection(
            router: router,
            settings: ServerCallSettings(maxReceiveMessageSize: configuration.maxReceiveMessageSize,
                                         maxSendMessageSize: configuration.maxSendMessageSize,
                                         rateLimiter: rateLimiter),
            logger: logger, remoteAddress: remote, remoteHost: ip,
            onStreamCountChange: { [weak self] count in self?.streamCountChanged(id, count) })
        var settings = HTTP2Session.Settings()
        settings.maxConcurrentStreams = configuration.maxConcurrentStreams
        settings.maxHeaderListSize = configuration.maxHeaderListSize
        settings.maxFrameSize = configuration.maxFrameSize
        settings.initialWindowSize = configuration.initialWindowSize
        settings.connectionWindowSize = configuration.connectionWindowSize
        let session = try HTTP2Session(role: .server, settings: settings)
        let handler = HTTP2ConnectionHandler(session: session, logic: logic, logger: logger)
        handler.handshakeTimeout = configuration.handshakeTimeout
        handler.idleTimeout = configuration.idleTimeout
        if let interval = configuration.keepaliveInterval {
            handler.keepalive = Keepalive(interval: interval, timeout: configuration.keepaliveTimeout)
        }
        let sync = channel.pipeline.syncOperations
        if let tls {
            try sync.addHandler(try OpenSSLHandler(context: tls, server: true, serverName: nil))
            try sync.addHandler(handler)
        } else if let other = configuration.otherProtocol {
            // Both protocols on one port: decide from the first bytes.
            try sync.addHandler(PrefaceSniffer(
                onHTTP2: { ctx in try ctx.pipeline.syncOperations.addHandler(handler) },
                onOther: { ctx in try other(ctx.channel) },
                timeout: configuration.handshakeTimeout))
        } else {
            try sync.addHandler(handler)
        }
        let entry = ConnectionEntry(handler: LoopBoundHandler(handler, eventLoop: channel.eventLoop), activeStreams: 0)
        let shuttingDown = state.withLock { s -> Bool in
            s.connections[id] = entry
            return s.shuttingDown
        }
        channel.closeFuture.whenComplete { [weak self] _ in self?.connectionClosed(id) }
        if shuttingDown { channel.close(promise: nil) }
    }

    private func streamCountChanged(_ id: ObjectIdentifier, _ count: Int) {
        let finishing: LoopBoundHandler? = state.withLock { s in
            s.connections[id]?.activeStreams = count
            return s.shuttingDown && count == 0 ? s.connections[id]?.handler : nil
        }
        finishing?.execute { handler in
            handler.session.submitGoAway(errorCode: 0)
            handler.closeAfterFlush()
        }
    }

    private func connectionClosed(_ id: ObjectIdentifier) {
        let drained = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.connections.removeValue(forKey: id)
            guard s.connections.isEmpty else { return [] }
            defer { s.drainWaiters = [] }
            return s.drainWaiters
        }
        for waiter in drained { waiter.resume() }
    }

    /// Returns when no connection is left, or at `deadline`. The timer runs in a detached
    /// task: a caller stopping because it was cancelled (the usual way) still gives running
    /// calls their grace period, and a connection that outlives it cannot keep this waiting.
    private func waitForConnectionsToClose(until deadline: ContinuousClock.Instant) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let drained = state.withLock { s -> Bool in
                if s.connections.isEmpty { return true }
                s.drainWaiters.append(continuation)
                return false
            }
            if drained { return continuation.resume() }
            Task.detached { [self] in
                try? await Task.sleep(until: deadline, clock: .continuous)
                let late = state.withLock { s -> [CheckedContinuation<Void, Never>] in
                    defer { s.drainWaiters = [] }
                    return s.drainWaiters
                }
                for waiter in late { waiter.resume() }
            }
        }
    }

    /// Stops accepting, sends GOAWAY, lets running calls finish (up to `timeout`), then closes.
    public func shutdownGracefully(timeout: Duration = .seconds(10)) async {
        let (listener, connections) = state.withLock { s in
            s.shuttingDown = true
            return (s.channel, Array(s.connections.values))
        }
        try? await listener?.close()
        for entry in connections {
            entry.handler.execute { handler in
                handler.session.submitShutdownNotice()
                if (handler.logic as? ServerConnection)?.activeStreamCount == 0 {
                    handler.session.submitGoAway(errorCode: 0)
                    handler.closeAfterFlush()
                }
            }
        }
        await waitForConnectionsToClose(until: ContinuousClock.now + timeout)
        let remaining = state.withLock { Array($0.connections.values) }
        for entry in remaining { entry.handler.execute { $0.close() } }
    }

    /// Serves until the surrounding task is cancelled, then shuts down gracefully.
    public func run() async throws {
        try await withTaskCancellationHandler {
            let channel = state.withLock { $0.channel }
            try await channel?.closeFuture.get()
        } onCancel: {
            Task { await self.shutdownGracefully() }
        }
    }
}
