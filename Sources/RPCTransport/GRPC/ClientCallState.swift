import ProtoCore
import RPCCore

/// The rules of one client call, as a value: what may follow what on the response side
/// (headers, messages, trailers, resets) and on the request side (messages, the end).
/// Each event returns what to do; `ClientStream` does it with nghttp2 and the waiters.
struct ClientCallState {
    enum Phase: Equatable {
        /// The request is out; no response headers yet.
        case awaitingHeaders
        /// Response headers came: messages may follow, then trailers.
        case receiving
        /// The call has its status; nothing more is read or sent.
        case closed
    }

    enum Action {
        /// The server's initial metadata: callers waiting for it learn it.
        case initialMetadata(Metadata)
        /// Response messages are compressed with this `grpc-encoding`.
        case useEncoding(String)
        /// The call's status, decided once: nil is OK.
        case complete(RPCError?, trailers: Metadata)
        /// Tell the server to stop sending on this stream.
        case reset(HTTP2ErrorCode)
    }

    /// What a request message meets.
    enum SendOutcome {
        case queue
        /// The request side is finished; the status, not the send, reports what happened.
        case dropSilently
        /// The call has a status: the send fails with it (an OK status included).
        case fail(RPCError)
    }

    /// What response DATA meets.
    enum DataOutcome: Equatable {
        /// Into the deframer.
        case deliver
        /// Consumed and dropped: the call is over.
        case discard
    }

    private(set) var phase = Phase.awaitingHeaders
    private(set) var sendFinished = false
    /// The status as the request side reports it once the call is closed.
    private(set) var closedWith: RPCError?

    // MARK: - Response side

    mutating func headersReceived(_ headers: [(String, String)], endStream: Bool) -> [Action] {
        guard phase != .closed else { return [] }
        var httpStatus = 0
        var grpcStatus: String?
        var grpcMessage = ""
        var details: [UInt8]?
        var contentType = ""
        var actions: [Action] = []
        for (name, value) in headers {
            switch name {
            case ":status": httpStatus = Int(value) ?? 0
            case "grpc-status": grpcStatus = value
            case "grpc-message": grpcMessage = PercentEncoding.decode(value)
            case "grpc-status-details-bin": details = Base64.decode(value)
            case "content-type": contentType = value
            case "grpc-encoding": actions.append(.useEncoding(value))
            default: break
            }
        }
        let metadata = MetadataCoding.metadata(from: headers)
        if phase == .awaitingHeaders {
            phase = .receiving
            if httpStatus != 200 {
                return actions + complete(RPCError(code: StatusCode.fromHTTPStatus(httpStatus), message: "HTTP status \(httpStatus)"),
                                          trailers: metadata)
            }
            if grpcStatus == nil && !contentType.hasPrefix("application/grpc") {
                return actions + complete(RPCError(code: .unknown, message: "unexpected content-type \(contentType)"), trailers: metadata)
            }
            if grpcStatus == nil {
                actions.append(.initialMetadata(metadata))
                // Headers that end the stream without a status fall through to the error below.
                if !endStream { return actions }
            } else {
                // Trailers-only: the initial metadata is empty, the fields are the trailers.
                actions.append(.initialMetadata(Metadata()))
            }
        }
        guard let grpcStatus, let code = Int(grpcStatus) else {
            return actions + complete(RPCError(code: .internal, message: "response ended without grpc-status"), trailers: metadata)
        }
        let error = code == 0 ? nil : RPCError(code: StatusCode(rawValue: code), message: grpcMessage, details: details, metadata: metadata)
        return actions + complete(error, trailers: metadata)
    }

    func dataReceived() -> DataOutcome {
        // DATA before HEADERS is refused by nghttp2's HTTP messaging rules on the client.
        phase == .closed ? .discard : .deliver
    }

    /// A response message could not be read (too large, corrupt, bad compression): the
    /// call fails with that, and the server is told to stop.
    mutating func messageUnreadable(_ error: RPCError) -> [Action] {
        guard phase != .closed else { return [] }
        return complete(error, trailers: Metadata()) + [.reset(.cancel)]
    }

    /// The stream closed (its end, or a reset): a call without a status fails with the
    /// reset's meaning.
    mutating func streamClosed(errorCode: UInt32) -> [Action] {
        guard phase != .closed else { return [] }
        return complete(HTTP2ErrorCode.callError(forReset: errorCode), trailers: Metadata())
    }

    /// The connection went, or the server is going away before this call began.
    mutating func connectionLost(_ error: RPCError) -> [Action] {
        guard phase != .closed else { return [] }
        return complete(error, trailers: Metadata())
    }

    /// The caller cancelled, or its deadline passed.
    mutating func cancel(_ error: RPCError) -> [Action] {
        guard phase != .closed else { return [] }
        return complete(error, trailers: Metadata()) + [.reset(.cancel)]
    }

    private mutating func complete(_ error: RPCError?, trailers: Metadata) -> [Action] {
        phase = .closed
        closedWith = error ?? RPCError(code: .ok, message: "")
        return [.complete(error, trailers: trailers)]
    }

    // MARK: - Request side

    func send() -> SendOutcome {
        if let closedWith { return .fail(closedWith) }
        return sendFinished ? .dropSilently : .queue
    }

    /// True the first time: END_STREAM goes out after what is queued.
    mutating func finishSending() -> Bool {
        guard !sendFinished else { return false }
        sendFinished = true
        return true
    }
}
