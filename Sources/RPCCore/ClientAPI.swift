import ProtoCore

/// Per-call settings a client chooses.
public struct CallOptions: Sendable {
    /// Sent as `grpc-timeout`; the call fails with DEADLINE_EXCEEDED when it passes.
    public var timeout: Duration?
    public var metadata: Metadata
    /// Compress request messages with gzip (`grpc-encoding: gzip`).
    public var compressRequests: Bool

    public init(timeout: Duration? = nil, metadata: Metadata = Metadata(), compressRequests: Bool = false) {
        self.timeout = timeout
        self.metadata = metadata
        self.compressRequests = compressRequests
    }
}

/// One call's stream as a transport provides it: bytes out, bytes in, then a status.
public protocol RPCClientStreamHandle: Sendable {
    func send(_ message: [UInt8]) async throws
    func finishSending() async throws
    /// Abandons the call (RST_STREAM CANCEL); the response stream then throws CANCELLED.
    func cancel()
    /// Response messages; throws the call's `RPCError` after the last one if it failed.
    var responses: RPCStream<[UInt8]> { get }
    /// The response headers' metadata; throws if the call failed before any headers.
    func initialMetadata() async throws -> Metadata
    /// The trailers' metadata and status, once the call has ended.
    func finalStatus() async -> (RPCStatus, Metadata)
}

/// What a client connection provides: a fresh stream per call.
public protocol RPCClientTransport: Sendable {
    func openStream(path: String, options: CallOptions) async throws -> any RPCClientStreamHandle
}

/// A typed call in progress, for every shape: send requests, finish, read responses.
public struct RPCCall<Request: ProtoMessage, Response: ProtoMessage>: Sendable {
    public let handle: any RPCClientStreamHandle

    public init(handle: any RPCClientStreamHandle) { self.handle = handle }

    public func send(_ request: Request) async throws { try await handle.send(request.serializedBytes()) }
    public func finishSending() async throws { try await handle.finishSending() }
    public func cancel() { handle.cancel() }

    public var responses: RPCStream<Response> {
        handle.responses.map { (bytes: consuming [UInt8]) in
            do { return try Response(serializedBytes: consume bytes) } catch {
                throw RPCError(code: .internal, message: "cannot decode response as \(Response.protoMessageName)")
            }
        }
    }

    /// For client-streaming calls: finish sending and read the one response.
    public func response() async throws -> Response {
        try await finishSending()
        return try await responses.single("response")
    }

    public func initialMetadata() async throws -> Metadata { try await handle.initialMetadata() }
    public func finalStatus() async -> (RPCStatus, Metadata) { await handle.finalStatus() }
}

/// The client generated stubs are built on.
public struct RPCClient: Sendable {
    public let transport: any RPCClientTransport

    public init(transport: any RPCClientTransport) { self.transport = transport }

    /// Opens a call of any shape; the caller sends and reads.
    public func makeCall<Req: ProtoMessage, Resp: ProtoMessage>(
        path: String, options: CallOptions = CallOptions(),
        request: Req.Type = Req.self, response: Resp.Type = Resp.self
    ) async throws -> RPCCall<Req, Resp> {
        RPCCall(handle: try await transport.openStream(path: path, options: options))
    }

    /// A unary call: one request, one response.
    public func unary<Req: ProtoMessage, Resp: ProtoMessage>(
        path: String, request: Req, options: CallOptions = CallOptions(), response: Resp.Type = Resp.self
    ) async throws -> Resp {
        let call: RPCCall<Req, Resp> = try await makeCall(path: path, options: options)
        try await call.send(request)
        return try await call.response()
    }

    /// A server-streaming call: the request is sent and the half closed; read `responses`.
    public func serverStreaming<Req: ProtoMessage, Resp: ProtoMessage>(
        path: String, request: Req, options: CallOptions = CallOptions(), response: Resp.Type = Resp.self
    ) async throws -> RPCCall<Req, Resp> {
        let call: RPCCall<Req, Resp> = try await makeCall(path: path, options: options)
        try await call.send(request)
        try await call.finishSending()
        return call
    }
}
