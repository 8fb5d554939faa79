import NIOCore
import Logging
import RPCCore
import ProtoCore

/// Limits and behaviour shared by every connection a server accepts.
struct ServerCallSettings: Sendable {
    var maxReceiveMessageSize: Int
    var maxSendMessageSize: Int
    var rateLimiter: RequestRateLimiter? = nil
}

/// The server half of gRPC over one HTTP/2 connection: turns streams into handler calls.
/// Event-loop confined; handler tasks reach it only through `ServerCallHandle`.
final class ServerConnection: HTTP2ConnectionLogic {
    private let router: RPCRouter
    private let settings: ServerCallSettings
    private let logger: Logger
    private let remoteAddress: String
    private let remoteHost: String?
    private var streams: [Int32: ServerStream] = [:]
    private(set) weak var handler: HTTP2ConnectionHandler?
    private var loopBound: LoopBoundHandler?
    private let onStreamCountChange: @Sendable (Int) -> Void

    init(router: RPCRouter, settings: ServerCallSettings, logger: Logger, remoteAddress: String, remoteHost: String? = nil,
         onStreamCountChange: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.router = router
        self.settings = settings
        self.logger = logger
        self.remoteAddress = remoteAddress
        self.remoteHost = remoteHost
        self.onStreamCountChange = onStreamCountChange
    }

    var activeStreamCount: Int { streams.count }

    func connectionActive(_ handler: HTTP2ConnectionHandler) {
        self.handler = handler
        if let loop = handler.eventLoop { loopBound = LoopBoundHandler(handler, eventLoop: loop) }
    }

    func connectionClosed(_ handler: HTTP2ConnectionHandler) {
        let all = streams
        streams.removeAll()
        for (_, stream) in all { stream.connectionClosed() }
        // The handler owns this logic; holding it back would keep both, and the nghttp2
        // session, alive for ever (found by the h2 fuzz target's leak check).
        loopBound = nil
    }

    // MARK: - HTTP2SessionDelegate

    func http2Session(_ session: HTTP2Session, headersFor streamID: Int32, _ headers: [(String, String)], endStream: Bool) {
        if let existing = streams[streamID] {
            // Request trailers carry nothing gRPC uses; only the end of stream matters.
            if endStream { existing.inboundEnded() }
            return
        }
        // A new call, even one refused below, is use: the connection is not idle.
        handler?.noteCallActivity()
        let head: ServerCallState.RequestHead
        switch ServerCallState.admit(headers) {
        case .failure(.httpStatus(let code)):
            session.submitResponse(streamID: streamID, [(":status", String(code))], endStream: true)
            return
        case .failure(.status(let code, let message)):
            Self.trailersOnly(session, streamID, RPCError(code: code, message: message))
            return
        case .success(let admitted):
            head = admitted
        }
        let path = head.path
        let context = RPCServerContext(path: path, requestMetadata: MetadataCoding.metadata(from: headers),
                                       deadline: head.timeout.map { .now + $0 }, peer: remoteAddress, peerHost: remoteHost)
        guard let rpc = router.method(forPath: path) else {
            Self.trailersOnly(session, streamID, router.unimplemented(path: path))
            return
        }
        if let limiter = settings.rateLimiter {
            let service = path.split(separator: "/", omittingEmptySubsequences: true).first.map(String.init) ?? path
            guard limiter.admit(service) else {
                Self.trailersOnly(session, streamID, RPCError(
                    code: .resourceExhausted, message: "\(service) accepts \(Int(limiter.perSecond)) calls a second; try again shortly"))
                return
            }
        }
        guard let loopBound else { return }
        let stream = ServerStream(id: streamID, session: session, context: context,
                                  deframer: MessageDeframer(maxMessageSize: settings.maxReceiveMessageSize, encoding: head.encoding),
                                  maxSendMessageSize: settings.maxSendMessageSize)
        streams[streamID] = stream
        onStreamCountChange(streams.count)
        if endStream { stream.inboundEnded() }
        stream.start(rpc, handle: ServerCallHandle(loop: loopBound, streamID: streamID), logger: logger)
    }

    func http2Session(_ session: HTTP2Session, dataFor streamID: Int32, _ bytes: UnsafeRawBufferPointer) {
        session.consumeConnection(count: bytes.count)
        guard let stream = streams[streamID] else {
            session.consumeStream(streamID: streamID, count: bytes.count)
            return
        }
        stream.received(bytes)
    }

    func http2Session(_ session: HTTP2Session, endStreamFor streamID: Int32) {
        streams[streamID]?.inboundEnded()
    }

    func http2Session(_ session: HTTP2Session, streamClosed streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        // Idle time counts from the end of the last call.
        handler?.noteCallActivity()
        onStreamCountChange(streams.count)
        stream.closed(errorCode: errorCode)
    }

    func http2Session(_ session: HTTP2Session, readDataFor streamID: Int32, max: Int) -> HTTP2DataRead {
        guard let stream = streams[streamID] else { return .end(0, trailers: nil) }
        return stream.read(max: max)
    }

    func http2Session(_ session: HTTP2Session, sendDataFor streamID: Int32, count: Int, to out: OutputAssembler) {
        streams[streamID]?.send(count: count, to: out)
    }

    func http2Session(_ session: HTTP2Session, goAwayReceived lastStreamID: Int32, errorCode: UInt32) {}
    func http2SessionPingAcked(_ session: HTTP2Session) { handler?.pingAcked() }
    func http2SessionSettingsReceived(_ session: HTTP2Session) { handler?.handshakeCompleted() }

    func http2Session(_ session: HTTP2Session, headersTooLargeFor streamID: Int32, size: Int) {
        Self.trailersOnly(session, streamID, RPCError(code: .resourceExhausted,
                                                      message: "request headers of \(size) bytes exceed the server's limit"))
    }

    // MARK: - Calls from handler tasks (on the loop)

    func stream(_ id: Int32) -> ServerStream? { streams[id] }

    static func trailersOnly(_ session: HTTP2Session, _ streamID: Int32, _ error: RPCError, metadata: Metadata = Metadata()) {
        var headers: [(String, String)] = [(":status", "200"), ("content-type", "application/grpc")]
        headers += StatusTrailers.headers(for: error, extra: metadata)
        session.submitResponse(streamID: streamID, headers, endStream: true)
    }
}

/// `grpc-status`, `grpc-message`, `grpc-status-details-bin` and metadata as header fields.
enum StatusTrailers {
    static func headers(for error: RPCError?, extra: Metadata) -> [(String, String)] {
        var out: [(String, String)] = [("grpc-status", String(error?.code.rawValue ?? 0))]
        if let error, !error.message.isEmpty {
            out.append(("grpc-message", PercentEncoding.encode(error.message)))
        }
        if let details = error?.details {
            out.append(("grpc-status-details-bin", Base64.encode(details, padded: false)))
        }
        out += MetadataCoding.headers(from: extra)
        if let error { out += MetadataCoding.headers(from: error.metadata) }
        return out
    }
}

/// A handler task's way back to its stream: every call hops onto the event loop.
struct ServerCallHandle: Sendable {
    let loop: LoopBoundHandler
    let streamID: Int32

    func write(_ framed: [ByteBuffer]) async throws {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, any Error>) in
            loop.execute { handler in
                guard let stream = (handler.logic as? ServerConnection)?.stream(streamID) else {
                    cont.resume(throwing: RPCError(code: .cancelled, message: "stream closed"))
                    return
                }
                stream.write(framed, continuation: cont)
            }
        }
    }

    func finish(_ error: RPCError?) {
        loop.execute { handler in
            (handler.logic as? ServerConnection)?.stream(streamID)?.finish(error)
        }
    }

    func resumeReading() {
        loop.execute { handler in
            (handler.logic as? ServerConnection)?.stream(streamID)?.resumeReading()
        }
    }
}
