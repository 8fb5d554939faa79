/// The error every RPC fails with: a status code, a human message, optional
/// `grpc-status-details-bin` bytes and trailing metadata. Turned into headers only at the wire.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    /// Serialized `google.rpc.Status`, sent as `grpc-status-details-bin`.
    public var details: [UInt8]?
    public var metadata: Metadata
    /// What went wrong underneath, kept for logs; never sent to the peer.
    public var cause: (any Error & Sendable)?

    public init(code: StatusCode, message: String, details: [UInt8]? = nil,
                metadata: Metadata = Metadata(), cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.details = details
        self.metadata = metadata
        self.cause = cause
    }

    public var description: String {
        message.isEmpty ? "\(code)" : "\(code): \(message)"
    }

    /// Any error as the status a peer should see: an `RPCError` keeps its code, anything
    /// else is UNKNOWN with its description.
    public static func wrapping(_ error: any Error) -> RPCError {
        if let rpc = error as? RPCError { return rpc }
        if error is CancellationError { return RPCError(code: .cancelled, message: "cancelled") }
        return RPCError(code: .unknown, message: String(describing: error))
    }
}

/// Two errors are equal when a peer would see the same status: `cause` stays out of it.
extension RPCError: Equatable {
    public static func == (a: RPCError, b: RPCError) -> Bool {
        a.code == b.code && a.message == b.message && a.details == b.details && a.metadata == b.metadata
    }
}

/// The final status of a call as it crossed the wire.
public struct RPCStatus: Sendable, Equatable {
    public var code: StatusCode
    public var message: String
    public init(code: StatusCode, message: String = "") {
        self.code = code
        self.message = message
    }
    public static let ok = RPCStatus(code: .ok)
}
