import NIOCore
import NIOHTTP1
import NIOPosix
import RPCTransport
import Locking

/// A small HTTP/1.1 server for operational endpoints (`/metrics`, `/healthy`).
public final class HTTPEndpointServer: Sendable {
    public struct Response: Sendable {
        public var status: HTTPResponseStatus
        public var contentType: String
        public var body: [UInt8]
        public init(status: HTTPResponseStatus = .ok, contentType: String = "text/plain; charset=utf-8", body: [UInt8]) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
        public static func text(_ s: String, status: HTTPResponseStatus = .ok) -> Response {
            Response(status: status, body: Array(s.utf8))
        }
    }
    public typealias Route = @Sendable () -> Response

    private let routes: [String: Route]
    private let channel = Locked<(any Channel)?>(nil)

    public init(routes: [String: Route]) {
        self.routes = routes
    }

    /// The answer for `path`, when it is one of the routes; for servers that embed these
    /// endpoints in a larger HTTP service.
    public func response(for path: String) -> Response? { routes[path]?() }

    /// The standard routes: Prometheus text at `/metrics`, "OK" at `/healthy`.
    public static func operational(metrics: MetricsRegistry) -> HTTPEndpointServer {
        HTTPEndpointServer(routes: [
            "/metrics": { Response(contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.render()) },
            "/healthy": { .text("OK") },
        ])
    }

    /// A connection that sends nothing for this long is closed.
    public static let idleTimeout: TimeAmount = .seconds(60)
    /// Scrapers and probes need a few connections; a flood from one address is closed at
    /// accept, so it cannot use up the descriptors of the server this endpoint belongs to.
    public static let maxConnectionsPerIP = 64

    @discardableResult
    public func start(host: String, port: Int) async throws -> Int {
        let routes = self.routes
        let gate = ConnectionGate(perIP: Self.maxConnectionsPerIP, total: ConnectionGate.defaultTotal)
        let ch = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let ip = channel.remoteAddress?.ipAddress
                if let refusal = gate.admit(ip) { return channel.eventLoop.makeFailedFuture(refusal) }
                channel.closeFuture.whenComplete { _ in gate.release(ip) }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    // A kept-alive scraper that goes quiet must not hold its connection for ever.
                    try sync.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
                    try sync.configureHTTPServerPipeline()
                    try sync.addHandler(EndpointHandler(routes: routes))
                }
            }
            .bind(host: host, port: port).get()
        channel.withLock { $0 = ch }
        return ch.localAddress?.port ?? port
    }

    public func stop() async {
        let ch = channel.withLock { $0 }
        try? await ch?.close()
    }
}

/// Answers GET and HEAD for known paths; everything else is 404 or 405.
final class EndpointHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let routes: [String: HTTPEndpointServer.Route]
    private var request: HTTPRequestHead?

    init(routes: [String: HTTPEndpointServer.Route]) { self.routes = routes }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break
        case .end:
            guard let head = request else { return }
            request = nil
            let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
            var response: HTTPEndpointServer.Response
            if head.method != .GET && head.method != .HEAD {
                response = .text("method not allowed\n", status: .methodNotAllowed)
            } else if let route = routes[path] {
                response = route()
            } else {
                response = .text("not found\n", status: .notFound)
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: response.contentType)
            headers.add(name: "Content-Length", value: String(response.body.count))
            if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))), promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
            }
            let keepAlive = head.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }
}
