import Logging
import NIOCore
import RPCCore

/// One server-side call on the event loop: inbound messages, outbound queue, status.
final class ServerStream {
    let id: Int32
    private unowned let session: HTTP2Session
    let context: RPCServerContext
    private var reader: PacedDeframer
    private let maxSendMessageSize: Int
    let inbound = InboundBuffer<[UInt8]>(highWatermark: 8, lowWatermark: 2, highWaterBytes: InboundLimits.highWaterBytes,
                                         weight: { $0.count })
    private var outbound = OutboundQueue()
    /// What may happen next on this call (`ServerCallState` holds the rules).
    private var call = ServerCallState()
    private var trailers: [(String, String)]?
    private var task: Task<Void, Never>?

    init(id: Int32, session: HTTP2Session, context: RPCServerContext, deframer: MessageDeframer, maxSendMessageSize: Int) {
        self.id = id
        self.session = session
        self.context = context
        self.reader = PacedDeframer(deframer, deliver: inbound.yield)
        self.maxSendMessageSize = maxSendMessageSize
    }

    func start(_ method: RPCServerMethod, handle: ServerCallHandle, logger: Logger) {
        inbound.setDemandHandler { handle.resumeReading() }
        let requests = RPCStream(inbound)
        let maxSend = maxSendMessageSize
        @Sendable func checkSize(_ count: Int) throws {
            guard count <= maxSend else {
                throw RPCError(code: .resourceExhausted, message: "response of \(count) bytes exceeds the limit of \(maxSend) bytes")
            }
        }
        // Framed here, off the event loop: a message and its prefix become one buffer, or
        // an encoded message keeps its own and gets a prefix buffer.
        let responses = RPCWriter<[UInt8]>({ message in
            try checkSize(message.count)
            try await handle.write([MessageFraming.framed(message)])
        }, encoded: { message in
            try checkSize(message.readableBytes)
            try await handle.write([MessageFraming.prefixBuffer(length: message.readableBytes), message])
        })
        let context = self.context
        let metrics = CallMetrics(path: context.path, kind: method.kind)
        task = Task {
            do {
                try await Deadline.run(context.deadline) {
                    try await method.handler(requests.counting(metrics.received), responses.counting(metrics.sent), context)
                }
                metrics.finished(.ok)
                handle.finish(nil)
            } catch {
                let rpcError = RPCError.wrapping(error)
                if rpcError.code == .unknown || rpcError.code == .internal {
                    logger.debug("\(context.path) failed: \(rpcError)")
                }
                metrics.finished(rpcError.code)
                handle.finish(rpcError)
            }
        }
    }

    func received(_ bytes: UnsafeRawBufferPointer) {
        if call.dataReceived() == .discard {
            // The status is out; whatever the client still sends is dropped.
            session.consumeStream(streamID: id, count: bytes.count)
            return
        }
        apply(reader.receive(bytes))
    }

    func resumeReading() {
        apply(reader.resume())
    }

    func inboundEnded() {
        apply(reader.endOfInput())
    }

    private func apply(_ step: PacedDeframer.Step) {
        switch step {
        case .consumed(let count):
            if count > 0 { session.consumeStream(streamID: id, count: count) }
        case .ended(let count, let cut):
            if count > 0 { session.consumeStream(streamID: id, count: count) }
            if let error = ServerCallState.requestEnd(buffered: cut) { inbound.finish(error) } else { inbound.finish() }
        case .failed(let error):
            // An oversized or corrupt message ends the call; the rest of the input is dropped.
            inbound.finish(error)
            finish(error)
            task?.cancel()
        }
    }

    func write(_ framed: [ByteBuffer], continuation: CheckedContinuation<Void, any Error>) {
        switch call.write() {
        case .reject(let error):
            continuation.resume(throwing: error)
            return
        case .queue(let headersFirst):
            if headersFirst { sendHeaders() }
        }
        for buffer in framed { outbound.append(buffer) }
        session.resumeData(streamID: id)
        if outbound.hasRoom {
            continuation.resume()
        } else {
            outbound.park(continuation)
        }
    }

    private func sendHeaders() {
        var headers: [(String, String)] = [(":status", "200"), ("content-type", "application/grpc"),
                                           ("grpc-accept-encoding", "identity,gzip,deflate")]
        headers += MetadataCoding.headers(from: context.initialMetadata)
        session.submitResponse(streamID: id, headers, endStream: false)
    }

    func finish(_ error: RPCError?) {
        switch call.finish() {
        case .ignore:
            return
        case .trailers:
            inbound.finish(RPCError(code: .cancelled, message: "call finished"))
            trailers = StatusTrailers.headers(for: error, extra: context.trailingMetadata)
            session.resumeData(streamID: id)
        case .trailersOnly:
            inbound.finish(RPCError(code: .cancelled, message: "call finished"))
            var extra = context.initialMetadata
            for e in context.trailingMetadata { extra.add(e.key, value: e.value) }
            ServerConnection.trailersOnly(session, id, error ?? RPCError(code: .ok, message: ""), metadata: extra)
        }
    }

    func read(max: Int) -> HTTP2DataRead {
        let n = min(max, outbound.queuedBytes)
        if n == outbound.queuedBytes, let trailers {
            return .end(n, trailers: trailers)
        }
        return n > 0 ? .bytes(n) : .deferred
    }

    func send(count: Int, to out: OutputAssembler) { outbound.send(count: count, to: out) }

    /// The HTTP/2 stream closed: a handler still running is cancelled.
    func closed(errorCode: UInt32) {
        switch call.streamClosed(errorCode: errorCode) {
        case .abortHandler(let error): abort(error)
        case .failParkedWrites: outbound.fail(RPCError(code: .cancelled, message: "stream closed"))
        }
    }

    func connectionClosed() { abort(call.connectionClosed()) }

    private func abort(_ error: RPCError) {
        inbound.finish(error)
        outbound.fail(error)
        task?.cancel()
    }
}

/// Runs work under an optional deadline, failing with DEADLINE_EXCEEDED when it passes.
enum Deadline {
    static func run(_ deadline: ContinuousClock.Instant?, _ body: @escaping @Sendable () async throws -> Void) async throws {
        guard let deadline else { return try await body() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(until: deadline, clock: .continuous)
                throw RPCError(code: .deadlineExceeded, message: "deadline exceeded")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }
}
