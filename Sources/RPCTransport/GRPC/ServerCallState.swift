import RPCCore

/// The rules of one server call, as a value: which requests are taken, and what may
/// follow what on the response side (headers, messages, a status as trailers or as a
/// trailers-only response). Each event returns what to do; `ServerStream` and
/// `ServerConnection` do it with nghttp2 and the handler's task.
struct ServerCallState {
    /// What a request's headers ask for, once they pass.
    struct RequestHead: Equatable {
        var path: String
        var timeout: Duration?
        /// `grpc-encoding` of the request's messages; nil for identity.
        var encoding: String?
    }

    /// Why a request is not taken, and how it is answered.
    enum Refusal: Error, Equatable {
        /// Not gRPC at all: a plain HTTP status, no gRPC status.
        case httpStatus(Int)
        /// A gRPC request this server will not run: a trailers-only response.
        case status(StatusCode, String)
    }

    /// The encodings a request's messages may use.
    static let acceptedEncodings: Set<String> = ["identity", "gzip", "deflate"]

    /// Checks a new stream's request headers, in the order gRPC servers answer them: the
    /// method, the content type, the deadline, the message encoding.
    static func admit(_ headers: [(String, String)]) -> Result<RequestHead, Refusal> {
        var method = "", path = "", contentType = ""
        var timeout: String?, encoding: String?
        for (name, value) in headers {
            switch name {
            case ":method": method = value
            case ":path": path = value
            case "content-type": contentType = value
            case "grpc-timeout": timeout = value
            case "grpc-encoding": encoding = value
            default: break
            }
        }
        guard method == "POST" else { return .failure(.httpStatus(405)) }
        guard contentType.hasPrefix("application/grpc") else { return .failure(.httpStatus(415)) }
        var head = RequestHead(path: path)
        if let timeout {
            guard let d = GRPCTimeout.parse(timeout) else { return .failure(.status(.internal, "malformed grpc-timeout \(timeout)")) }
            head.timeout = d
        }
        if let encoding, !acceptedEncodings.contains(encoding) {
            return .failure(.status(.unimplemented, "unsupported grpc-encoding \(encoding)"))
        }
        head.encoding = encoding == "identity" ? nil : encoding
        return .success(head)
    }

    enum Phase: Equatable {
        /// The handler runs; no response headers yet.
        case open
        /// Response headers are out; messages may follow.
        case responding
        /// The status is decided (queued behind the messages, or sent trailers-only).
        case finished
    }

    enum WriteOutcome: Equatable {
        /// Queue the message, after the response headers when `headersFirst`.
        case queue(headersFirst: Bool)
        case reject(RPCError)
    }

    enum FinishOutcome: Equatable {
        /// Already finished: nothing more.
        case ignore
        /// Trailers follow the messages already queued.
        case trailers
        /// No message went out: the status is the whole response.
        case trailersOnly
    }

    enum DataOutcome: Equatable {
        case deliver
        /// The status is out; what the client still sends is consumed and dropped.
        case discard
    }

    enum CloseOutcome: Equatable {
        /// The stream went before the handler finished: cancel it with this error.
        case abortHandler(RPCError)
        /// Finished already: only writes still parked fail.
        case failParkedWrites
    }

    private(set) var phase = Phase.open

    var isFinished: Bool { phase == .finished }

    mutating func write() -> WriteOutcome {
        switch phase {
        case .finished: return .reject(RPCError(code: .failedPrecondition, message: "call already finished"))
        case .open:
            phase = .responding
            return .queue(headersFirst: true)
        case .responding: return .queue(headersFirst: false)
        }
    }

    mutating func finish() -> FinishOutcome {
        switch phase {
        case .finished: return .ignore
        case .open:
            phase = .finished
            return .trailersOnly
        case .responding:
            phase = .finished
            return .trailers
        }
    }

    func dataReceived() -> DataOutcome { phase == .finished ? .discard : .deliver }

    /// The request side ended with `buffered` bytes of a message not yet complete.
    static func requestEnd(buffered: Int) -> RPCError? {
        buffered > 0 ? RPCError(code: .internal, message: "request ended inside a message") : nil
    }

    mutating func streamClosed(errorCode: UInt32) -> CloseOutcome {
        guard phase != .finished else { return .failParkedWrites }
        phase = .finished
        return .abortHandler(RPCError(code: .cancelled, message: "stream reset by client (HTTP/2 error \(errorCode))"))
    }

    /// The connection closed under the call.
    mutating func connectionClosed() -> RPCError {
        phase = .finished
        return RPCError(code: .cancelled, message: "connection closed")
    }
}
