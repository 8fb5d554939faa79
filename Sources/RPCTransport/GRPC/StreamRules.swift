import RPCCore

/// HTTP/2 error codes (RFC 9113, section 7) that the gRPC stream rules use.
enum HTTP2ErrorCode: UInt32, Sendable {
    case noError = 0
    case protocolError = 1
    case internalError = 2
    case refusedStream = 7
    case cancel = 8
    case enhanceYourCalm = 11
    case inadequateSecurity = 12

    /// The status a call gets when its stream is reset with `code` before a status came
    /// (gRPC's HTTP/2 error code mapping).
    static func callError(forReset code: UInt32) -> RPCError {
        switch HTTP2ErrorCode(rawValue: code) {
        case .noError?: return RPCError(code: .internal, message: "stream closed without a status")
        case .refusedStream?: return RPCError(code: .unavailable, message: "stream refused by server")
        case .cancel?: return RPCError(code: .cancelled, message: "stream cancelled by server")
        case .enhanceYourCalm?: return RPCError(code: .resourceExhausted, message: "server says: enhance your calm")
        case .inadequateSecurity?: return RPCError(code: .permissionDenied, message: "server requires stronger TLS")
        default: return RPCError(code: .internal, message: "stream reset with HTTP/2 error \(code)")
        }
    }
}

// Stream errors and connection errors are told apart by where they can arise: the call
// state machines below act on one stream only, so none of their actions can end the
// connection (there is no GOAWAY among them). A broken rule of a call ends that call:
// its status, and a RST_STREAM where the peer must stop sending. Connection errors (bad
// frames, flow control, SETTINGS, keepalive and handshake timeouts) are decided by
// nghttp2 and `HTTP2ConnectionHandler`, which own the connection.

/// How much a call's received messages may queue before the transport stops reading its
/// stream (and so stops granting the peer HTTP/2 window).
enum InboundLimits {
    /// Two 1 MiB piece chunks: the consumer (a store write) always has the next one ready,
    /// while a child with several streams does not hold 8 MiB per stream.
    static let highWaterBytes = 2 << 20
}
