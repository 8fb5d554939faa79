import NIOCore
import Logging

/// The gRPC logic above a connection (server or client side).
protocol HTTP2ConnectionLogic: HTTP2SessionDelegate {
    func connectionActive(_ handler: HTTP2ConnectionHandler)
    /// Why the connection is about to close (a TLS alert, say), before `connectionClosed`.
    func connectionFailed(_ error: any Error)
    func connectionClosed(_ handler: HTTP2ConnectionHandler)
    /// Calls in progress; a connection with none may be closed as idle.
    var activeStreamCount: Int { get }
}

extension HTTP2ConnectionLogic {
    var activeStreamCount: Int { 0 }
    func connectionFailed(_ error: any Error) {}
}

/// A NIO handler that feeds bytes into an nghttp2 session and writes back whatever it
/// produces. Event-loop confined; other threads reach it through `LoopBoundHandler`.
final class HTTP2ConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let session: HTTP2Session
    let logic: any HTTP2ConnectionLogic
    let logger: Logger
    private(set) var context: ChannelHandlerContext?
    private var closed = false
    /// Gathers each flush's output; made on first use (it needs the channel's allocator).
    private var output: OutputAssembler?
    /// PINGs sent every `interval`; the connection closes if one is not acked in `timeout`.
    var keepalive: Keepalive?
    private var keepaliveTask: Scheduled<Void>?
    private var keepaliveTimeoutTask: Scheduled<Void>?
    private var awaitingPingAck = false
    /// Set before the channel is active. The peer's SETTINGS must arrive within
    /// `handshakeTimeout` of the connection opening.
    var handshakeTimeout: Duration?
    private var handshakeTask: Scheduled<Void>?
    /// With no call open and none started or ended for `idleTimeout`, the connection ends.
    /// Only calls count: a client's PING acks (our keepalive) or a stream of SETTINGS and
    /// WINDOW_UPDATEs would otherwise keep an unused connection for ever.
    var idleTimeout: Duration?
    private var idleTask: Scheduled<Void>?
    private var lastActivity = NIODeadline.now()

    init(session: HTTP2Session, logic: any HTTP2ConnectionLogic, logger: Logger) {
        self.session = session
        self.logic = logic
        self.logger = logger
        session.delegate = logic
    }

    var eventLoop: (any EventLoop)? { context?.eventLoop }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { activate(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context holds this handler: keeping it too would keep both, the logic and the
        // nghttp2 session alive after the connection is gone (found by the h2 fuzz target).
        self.context = nil
        handshakeTask?.cancel()
        idleTask?.cancel()
        keepaliveTask?.cancel()
        keepaliveTimeoutTask?.cancel()
    }

    func channelActive(context: ChannelHandlerContext) {
        activate(context)
        context.fireChannelActive()
    }

    private var activated = false
    private func activate(_ context: ChannelHandlerContext) {
        guard !activated else { return }
        activated = true
        logic.connectionActive(self)
        flush()
        scheduleKeepalive(context)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        if let handshakeTimeout {
            handshakeTask = context.eventLoop.scheduleTask(in: handshakeTimeout.timeAmount) {
                let handler = bound.value
                handler.logger.debug("no HTTP/2 SETTINGS within \(handshakeTimeout); closing")
                handler.close()
            }
        }
        scheduleIdleCheck(context, at: .now() + (idleTimeout?.timeAmount ?? .zero))
    }

    /// The logic saw a call start or end: the connection is in use.
    func noteCallActivity() {
        lastActivity = .now()
    }

    /// The peer's SETTINGS arrived: the connection is established.
    func handshakeCompleted() {
        handshakeTask?.cancel()
        handshakeTask = nil
    }

    private func scheduleIdleCheck(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        guard let idleTimeout, !closed else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleTask = context.eventLoop.scheduleTask(deadline: deadline) {
            let handler = bound.value
            guard !handler.closed, let ctx = handler.context else { return }
            let quietUntil = handler.lastActivity + idleTimeout.timeAmount
            if handler.logic.activeStreamCount == 0 && quietUntil <= .now() {
                handler.logger.debug("idle for \(idleTimeout); closing")
                handler.session.submitGoAway(errorCode: 0)
                handler.closeAfterFlush()
            } else {
                handler.scheduleIdleCheck(ctx, at: max(quietUntil, .now() + (idleTimeout / 4).timeAmount))
            }
        }
    }

    private func scheduleKeepalive(_ context: ChannelHandlerContext) {
        guard let keepalive, !closed else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        keepaliveTask = context.eventLoop.scheduleTask(in: keepalive.interval.timeAmount) {
            let handler = bound.value
            guard !handler.closed else { return }
            handler.awaitingPingAck = true
            handler.session.submitPing()
            handler.flush()
            handler.keepaliveTimeoutTask = handler.context?.eventLoop.scheduleTask(in: keepalive.timeout.timeAmount) {
                let handler = bound.value
                if handler.awaitingPingAck {
                    handler.logger.debug("keepalive PING not acknowledged within \(keepalive.timeout); closing")
                    handler.close()
                }
            }
            if let ctx = handler.context { handler.scheduleKeepalive(ctx) }
        }
    }

    /// Called by the logic when a PING we sent is acknowledged.
    func pingAcked() {
        awaitingPingAck = false
        keepaliveTimeoutTask?.cancel()
        pingsAcked += 1
    }

    /// PINGs of ours the peer acknowledged; for tests and diagnostics.
    private(set) var pingsAcked = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            try buffer.withUnsafeReadableBytes { try session.receive($0) }
        } catch {
            logger.debug("closing connection: \(error)")
            flush()
            close()
            return
        }
        flush()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flush() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        keepaliveTask?.cancel()
        keepaliveTimeoutTask?.cancel()
        handshakeTask?.cancel()
        idleTask?.cancel()
        logic.connectionClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error: \(error)")
        logic.connectionFailed(error)
        close()
    }

    /// Writes out everything nghttp2 has ready. Safe to call often; does nothing while
    /// the session is inside a callback (the outer call flushes afterwards).
    func flush() {
        guard let context, !closed, !session.isProcessing else { return }
        guard context.channel.isWritable else { return }
        let out = output ?? OutputAssembler(allocator: context.channel.allocator)
        output = out
        do {
            try session.drainOutput(into: out)
        } catch {
            logger.debug("nghttp2 send failed: \(error)")
            close()
            return
        }
        let buffers = out.take()
        if !buffers.isEmpty {
            for buffer in buffers { context.write(wrapOutboundOut(buffer), promise: nil) }
            context.flush()
        }
        if !session.wantsIO {
            close()
        }
    }

    /// Sends what is queued (a GOAWAY, say), then closes.
    func closeAfterFlush() {
        flush()
        close()
    }

    func close() {
        guard let context, !closed else { return }
        closed = true
        context.close(promise: nil)
    }
}

/// Keepalive PING settings.
struct Keepalive {
    var interval: Duration
    var timeout: Duration
}

/// Lets async code run a closure on the handler's event loop.
struct LoopBoundHandler: Sendable {
    let eventLoop: any EventLoop
    private let bound: NIOLoopBound<HTTP2ConnectionHandler>

    init(_ handler: HTTP2ConnectionHandler, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.bound = NIOLoopBound(handler, eventLoop: eventLoop)
    }

    /// The handler itself; only valid while running on its event loop.
    var handlerOnLoop: HTTP2ConnectionHandler { bound.value }

    /// Runs `body` on the loop, then flushes what it produced.
    func execute(_ body: @escaping @Sendable (HTTP2ConnectionHandler) -> Void) {
        let bound = self.bound
        eventLoop.execute {
            let handler = bound.value
            body(handler)
            handler.flush()
        }
    }
}

extension Duration {
    var timeAmount: TimeAmount {
        .nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}
