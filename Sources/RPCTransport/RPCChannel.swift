import NIOCore
import NIOPosix
import Logging
import Locking
import RPCCore

/// Where and how a client connects.
public struct RPCClientConfiguration: Sendable {
    public var target: RPCServerConfiguration.Address
    public var tls: TLSConfiguration?
    public var maxReceiveMessageSize: Int = 4 << 20
    /// Requests larger than this fail locally with RESOURCE_EXHAUSTED before they are sent.
    public var maxSendMessageSize: Int = Int(Int32.max)
    public var connectTimeout: Duration = .seconds(10)
    public var keepaliveInterval: Duration?
    public var keepaliveTimeout: Duration = .seconds(20)
    public var userAgent = "dragonfly-swift-grpc/0.1"

    public init(target: RPCServerConfiguration.Address, tls: TLSConfiguration? = nil) {
        self.target = target
        self.tls = tls
    }

    /// Parses `host:port`, `[v6]:port` or `unix:PATH`.
    public static func parse(_ address: String, tls: TLSConfiguration? = nil) throws -> RPCClientConfiguration {
        if address.hasPrefix("unix:") {
            return RPCClientConfiguration(target: .unix(path: String(address.dropFirst(5))), tls: tls)
        }
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw RPCError(code: .invalidArgument, message: "address \(address) is not host:port or unix:PATH")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return RPCClientConfiguration(target: .tcp(host: host, port: port), tls: tls)
    }
}

/// A client connection to one server, reconnecting on demand after the server goes away.
/// Conforms to `RPCClientTransport`, so generated clients run on it.
public final class RPCChannel: RPCClientTransport {
    private let configuration: RPCClientConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let tlsContext: TLSContext?
    private let current = Locked<EventLoopFuture<LoopBoundHandler>?>(nil)

    public init(configuration: RPCClientConfiguration, logger: Logger = Logger(label: "rpc.client"),
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.tlsContext = try configuration.tls.map { try TLSContext(configuration: $0, server: false) }
    }

    public convenience init(address: String, tls: TLSConfiguration? = nil) throws {
        try self.init(configuration: RPCClientConfiguration.parse(address, tls: tls))
    }

    private var authority: String {
        switch configuration.target {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix: return "localhost"
        }
    }

    private func connection() -> EventLoopFuture<LoopBoundHandler> {
        current.withLock { future in
            if let future { return future }
            let made = connect()
            future = made
            made.whenFailure { [weak self] _ in self?.forget(made) }
            return made
        }
    }

    private func forget(_ future: EventLoopFuture<LoopBoundHandler>) {
        current.withLock { if $0 === future { $0 = nil } }
    }

    private func connect() -> EventLoopFuture<LoopBoundHandler> {
        let tls = tlsContext
        let logger = self.logger
        let config = configuration
        let serverName: String? = { if case .tcp(let host, _) = config.target { return host }; return nil }()
        let ready = group.next().makePromise(of: LoopBoundHandler.self)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(config.connectTimeout.timeAmount)
            .channelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let loop = channel.eventLoop
                    let logic = ClientConnection(
                        onUnusable: { [weak self] in self?.forget(ready.futureResult) },
                        onReady: { result in
                            switch result {
                            case .success(let handler): ready.succeed(LoopBoundHandler(handler, eventLoop: loop))
                            case .failure(let error): ready.fail(error)
                            }
                        })
                    let session = try HTTP2Session(role: .client)
                    let handler = HTTP2ConnectionHandler(session: session, logic: logic, logger: logger)
                    if let interval = config.keepaliveInterval {
                        handler.keepalive = Keepalive(interval: interval, timeout: config.keepaliveTimeout)
                    }
                    let sync = channel.pipeline.syncOperations
                    if let tls { try sync.addHandler(try OpenSSLHandler(context: tls, server: false, serverName: serverName)) }
                    try sync.addHandler(handler)
                }
            }
        let channelFuture: EventLoopFuture<any Channel>
        switch config.target {
        case .tcp(let host, let port): channelFuture = bootstrap.connect(host: host, port: port)
        case .unix(let path): channelFuture = bootstrap.connect(unixDomainSocketPath: path)
        }
        channelFuture.whenFailure { ready.fail($0) }
        // A peer that accepts TCP but never finishes TLS or sends SETTINGS must not hang callers.
        let timeout = group.next().scheduleTask(in: config.connectTimeout.timeAmount) {
            ready.fail(RPCError(code: .unavailable, message: "connection not ready within \(config.connectTimeout)"))
            channelFuture.whenSuccess { $0.close(promise: nil) }
        }
        ready.futureResult.whenComplete { _ in timeout.cancel() }
        return ready.futureResult
    }

    public func openStream(path: String, options: CallOptions) async throws -> any RPCClientStreamHandle {
        // A connection going away (the server's idle timeout, a GOAWAY) refuses the stream
        // before anything is sent: open it on a fresh connection, as gRPC's transparent
        // retry does, a bounded number of times.
        var attempts = 0
        while true {
            do {
                return try await openStreamOnce(path: path, options: options)
            } catch let error as RPCError where error.code == .unavailable && error.message == ClientConnection.closingMessage {
                attempts += 1
                if attempts >= 3 { throw error }
            }
        }
    }

    private func openStreamOnce(path: String, options: CallOptions) async throws -> ClientStreamHandle {
        let loop: LoopBoundHandler
        let future = connection()
        do {
            loop = try await future.get()
        } catch {
            throw RPCError(code: .unavailable, message: "cannot connect to \(configuration.target): \(error)")
        }
        var headers: [(String, String)] = [
            (":method", "POST"), (":scheme", configuration.tls == nil ? "http" : "https"),
            (":path", path), (":authority", authority),
            ("content-type", "application/grpc"), ("te", "trailers"),
            ("user-agent", configuration.userAgent), ("grpc-accept-encoding", "identity,gzip,deflate"),
        ]
        if let timeout = options.timeout { headers.append(("grpc-timeout", GRPCTimeout.format(timeout))) }
        if options.compressRequests { headers.append(("grpc-encoding", "gzip")) }
        headers += MetadataCoding.headers(from: options.metadata)
        let maxReceive = configuration.maxReceiveMessageSize
        let maxSend = configuration.maxSendMessageSize
        let requestHeaders = headers
        let timeout = options.timeout
        let compress = options.compressRequests
        return try await withCheckedThrowingContinuation { (cont: CheckedContinuation<ClientStreamHandle, any Error>) in
            loop.execute { handler in
                guard let logic = handler.logic as? ClientConnection else {
                    cont.resume(throwing: RPCError(code: .internal, message: "not a client connection"))
                    return
                }
                do {
                    let stream: ClientStream
                    do {
                        stream = try logic.open(requestHeaders, maxReceiveMessageSize: maxReceive)
                    } catch {
                        if (error as? RPCError)?.message == ClientConnection.closingMessage { self.forget(future) }
                        throw error
                    }
                    let bound = NIOLoopBound(stream, eventLoop: loop.eventLoop)
                    let handle = ClientStreamHandle(loop: loop, stream: bound, inbound: stream.inbound, compress: compress,
                                                    maxSendMessageSize: maxSend)
                    stream.inbound.setDemandHandler { handle.resumeReading() }
                    if let timeout {
                        stream.timeoutTask = loop.eventLoop.scheduleTask(in: timeout.timeAmount) {
                            bound.value.cancel(RPCError(code: .deadlineExceeded, message: "deadline exceeded"))
                            loop.handlerOnLoop.flush()
                        }
                    }
                    cont.resume(returning: handle)
                } catch {
                    cont.resume(throwing: error)
                }
            }
        }
    }

    /// Keepalive PINGs the server acknowledged on the current connection; for tests.
    func keepalivePingsAcked() async -> Int {
        guard let future = current.withLock({ $0 }), let loop = try? await future.get() else { return 0 }
        return (try? await loop.eventLoop.submit { loop.handlerOnLoop.pingsAcked }.get()) ?? 0
    }

    /// Closes the connection; calls in flight fail with UNAVAILABLE.
    public func close() async {
        let future = current.withLock { f -> EventLoopFuture<LoopBoundHandler>? in
            let old = f
            f = nil
            return old
        }
        guard let handler = try? await future?.get() else { return }
        handler.execute { $0.close() }
    }
}
