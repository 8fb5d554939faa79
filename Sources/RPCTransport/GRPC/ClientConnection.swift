import NIOCore
import RPCCore

/// The client half of gRPC over one HTTP/2 connection. Event-loop confined.
final class ClientConnection: HTTP2ConnectionLogic {
    private var streams: [Int32: ClientStream] = [:]
    private(set) weak var handler: HTTP2ConnectionHandler?
    /// Set once the server sent GOAWAY or the connection closed: open no new streams here.
    private(set) var isDraining = false
    private let onUnusable: @Sendable () -> Void
    /// Told once: the connection can carry streams (TLS done, server SETTINGS seen), or
    /// failed before it could.
    private var onReady: ((Result<HTTP2ConnectionHandler, RPCError>) -> Void)?
    /// The first error that ended the connection, so a caller whose connection never became
    /// ready learns why (a TLS alert such as "certificate required") rather than only that.
    private var failure: (any Error)?

    init(onUnusable: @escaping @Sendable () -> Void,
         onReady: @escaping (Result<HTTP2ConnectionHandler, RPCError>) -> Void) {
        self.onUnusable = onUnusable
        self.onReady = onReady
    }

    func connectionActive(_ handler: HTTP2ConnectionHandler) {
        self.handler = handler
    }

    /// Streams opened before the server's SETTINGS could exceed its stream limit and be
    /// refused, so the connection counts as ready only once they arrive.
    func http2SessionSettingsReceived(_ session: HTTP2Session) {
        guard let handler, let ready = onReady else { return }
        onReady = nil
        ready(.success(handler))
    }

    func connectionFailed(_ error: any Error) {
        if failure == nil { failure = error }
    }

    func connectionClosed(_ handler: HTTP2ConnectionHandler) {
        isDraining = true
        if let ready = onReady {
            onReady = nil
            let reason = failure.map { ": \($0)" } ?? ""
            ready(.failure(RPCError(code: .unavailable, message: "connection closed before it was ready\(reason)")))
        }
        onUnusable()
        let all = streams
        streams.removeAll()
        for (_, s) in all { s.connectionLost(RPCError(code: .unavailable, message: "connection closed")) }
    }

    /// The refusal of a stream on a connection that is going away: nothing reached the
    /// server, so the channel may open the stream on a new connection instead.
    static let closingMessage = "connection is closing"

    func open(_ headers: [(String, String)], maxReceiveMessageSize: Int) throws(RPCError) -> ClientStream {
        guard !isDraining, let handler else {
            throw RPCError(code: .unavailable, message: Self.closingMessage)
        }
        let id = handler.session.submitRequest(headers)
        guard id > 0 else {
            throw RPCError(code: .unavailable, message: "cannot open a stream (nghttp2 error \(id))")
        }
        let stream = ClientStream(id: id, session: handler.session, maxReceiveMessageSize: maxReceiveMessageSize)
        streams[id] = stream
        return stream
    }

    // MARK: - HTTP2SessionDelegate

    func http2Session(_ session: HTTP2Session, headersFor streamID: Int32, _ headers: [(String, String)], endStream: Bool) {
        streams[streamID]?.headers(headers, endStream: endStream)
    }

    func http2Session(_ session: HTTP2Session, dataFor streamID: Int32, _ bytes: UnsafeRawBufferPointer) {
        session.consumeConnection(count: bytes.count)
        guard let stream = streams[streamID] else {
            session.consumeStream(streamID: streamID, count: bytes.count)
            return
        }
        stream.data(bytes)
    }

    func http2Session(_ session: HTTP2Session, endStreamFor streamID: Int32) {
        // A response that ends on DATA never sent its trailers.
        streams[streamID]?.closed(errorCode: 0)
    }

    func http2Session(_ session: HTTP2Session, streamClosed streamID: Int32, errorCode: UInt32) {
        streams.removeValue(forKey: streamID)?.closed(errorCode: errorCode)
    }

    func http2Session(_ session: HTTP2Session, readDataFor streamID: Int32, max: Int) -> HTTP2DataRead {
        guard let stream = streams[streamID] else { return .end(0, trailers: nil) }
        return stream.read(max: max)
    }

    func http2Session(_ session: HTTP2Session, sendDataFor streamID: Int32, count: Int, to out: OutputAssembler) {
        streams[streamID]?.send(count: count, to: out)
    }

    func http2Session(_ session: HTTP2Session, goAwayReceived lastStreamID: Int32, errorCode: UInt32) {
        isDraining = true
        onUnusable()
        // Streams the server never processed may be retried elsewhere by the caller.
        for (id, stream) in streams where id > lastStreamID {
            stream.connectionLost(RPCError(code: .unavailable, message: "server is shutting down"))
        }
    }

    func http2SessionPingAcked(_ session: HTTP2Session) { handler?.pingAcked() }
}

/// A client call's stream, usable from any task; every operation hops to the loop.
struct ClientStreamHandle: RPCClientStreamHandle {
    let loop: LoopBoundHandler
    let stream: NIOLoopBound<ClientStream>
    let inbound: InboundBuffer<[UInt8]>
    let compress: Bool
    let maxSendMessageSize: Int

    var responses: RPCStream<[UInt8]> { RPCStream(inbound) }

    func send(_ message: [UInt8]) async throws {
        guard message.count <= maxSendMessageSize else {
            throw RPCError(code: .resourceExhausted,
                           message: "request of \(message.count) bytes exceeds the limit of \(maxSendMessageSize) bytes")
        }
        let framed = MessageFraming.framed(compress ? Gzip.compress(message) : message, compressed: compress)
        let stream = self.stream
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, any Error>) in
            loop.execute { _ in stream.value.send(framed, continuation: cont) }
        }
    }

    func finishSending() async throws {
        let stream = self.stream
        loop.execute { _ in stream.value.finishSending() }
    }

    func cancel() {
        let stream = self.stream
        loop.execute { _ in stream.value.cancel(RPCError(code: .cancelled, message: "cancelled by client")) }
    }

    func initialMetadata() async throws -> Metadata {
        let stream = self.stream
        return try await withCheckedThrowingContinuation { cont in
            loop.execute { _ in stream.value.awaitInitialMetadata(cont) }
        }
    }

    func finalStatus() async -> (RPCStatus, Metadata) {
        let stream = self.stream
        return await withCheckedContinuation { cont in
            loop.execute { _ in stream.value.awaitStatus(cont) }
        }
    }

    func resumeReading() {
        let stream = self.stream
        loop.execute { _ in stream.value.resumeReading() }
    }
}
