import Locking
import ProtoCore

/// The four gRPC call shapes.
public enum RPCKind: String, Sendable {
    case unary, clientStreaming, serverStreaming, bidirectionalStreaming
}

/// What a handler knows about its call, and where it puts metadata for the peer.
public final class RPCServerContext: Sendable {
    /// `/package.Service/Method`.
    public let path: String
    public let requestMetadata: Metadata
    /// From `grpc-timeout`; the transport cancels the handler when it passes.
    public let deadline: ContinuousClock.Instant?
    /// The remote address, for logs.
    public let peer: String
    /// The remote IP address; nil on a unix socket. Who the caller is, for limits per host.
    public let peerHost: String?

    private struct Outgoing {
        var initial = Metadata()
        var trailing = Metadata()
    }
    private let outgoing = Locked(Outgoing())

    public init(path: String, requestMetadata: Metadata, deadline: ContinuousClock.Instant?, peer: String, peerHost: String? = nil) {
        self.path = path
        self.requestMetadata = requestMetadata
        self.deadline = deadline
        self.peer = peer
        self.peerHost = peerHost
    }

    /// Metadata sent with the response headers; only effective before the first message.
    public func addInitialMetadata(_ key: String, _ value: Metadata.Value) {
        outgoing.withLock { $0.initial.add(key, value: value) }
    }
    /// Metadata sent with the trailers (grpc-status).
    public func addTrailingMetadata(_ key: String, _ value: Metadata.Value) {
        outgoing.withLock { $0.trailing.add(key, value: value) }
    }
    public var initialMetadata: Metadata { outgoing.withLock { $0.initial } }
    public var trailingMetadata: Metadata { outgoing.withLock { $0.trailing } }
}

/// One method of a service, erased to bytes so the transport can route to it.
public struct RPCServerMethod: Sendable {
    public typealias RawHandler = @Sendable (RPCStream<[UInt8]>, RPCWriter<[UInt8]>, RPCServerContext) async throws -> Void

    public let name: String
    public let kind: RPCKind
    public let handler: RawHandler

    public init(name: String, kind: RPCKind, handler: @escaping RawHandler) {
        self.name = name
        self.kind = kind
        self.handler = handler
    }

    static func decoding<M: ProtoMessage>(_ stream: RPCStream<[UInt8]>, as: M.Type) -> RPCStream<M> {
        stream.map { (bytes: consuming [UInt8]) in
            do { return try M(serializedBytes: consume bytes) } catch {
                // The client sent bytes that are not this message: its fault, not ours.
                throw RPCError(code: .invalidArgument, message: "cannot decode request as \(M.protoMessageName)")
            }
        }
    }

    public static func unary<Req: ProtoMessage, Resp: ProtoMessage>(
        _ name: String, _ body: @escaping @Sendable (Req, RPCServerContext) async throws -> Resp
    ) -> RPCServerMethod {
        RPCServerMethod(name: name, kind: .unary) { requests, responses, context in
            let request = try await decoding(requests, as: Req.self).single(name)
            let response = try await body(request, context)
            try await responses.write(response.serializedBytes())
        }
    }

    public static func serverStreaming<Req: ProtoMessage, Resp: ProtoMessage>(
        _ name: String, _ body: @escaping @Sendable (Req, RPCWriter<Resp>, RPCServerContext) async throws -> Void
    ) -> RPCServerMethod {
        RPCServerMethod(name: name, kind: .serverStreaming) { requests, responses, context in
            let request = try await decoding(requests, as: Req.self).single(name)
            try await body(request, responses.map { $0.serializedBytes() }, context)
        }
    }

    public static func clientStreaming<Req: ProtoMessage, Resp: ProtoMessage>(
        _ name: String, _ body: @escaping @Sendable (RPCStream<Req>, RPCServerContext) async throws -> Resp
    ) -> RPCServerMethod {
        RPCServerMethod(name: name, kind: .clientStreaming) { requests, responses, context in
            let response = try await body(decoding(requests, as: Req.self), context)
            try await responses.write(response.serializedBytes())
        }
    }

    public static func bidirectionalStreaming<Req: ProtoMessage, Resp: ProtoMessage>(
        _ name: String, _ body: @escaping @Sendable (RPCStream<Req>, RPCWriter<Resp>, RPCServerContext) async throws -> Void
    ) -> RPCServerMethod {
        RPCServerMethod(name: name, kind: .bidirectionalStreaming) { requests, responses, context in
            try await body(decoding(requests, as: Req.self), responses.map { $0.serializedBytes() }, context)
        }
    }
}

/// A service a server hosts. Generated service protocols refine this and supply `methods`.
public protocol RPCServiceProvider: Sendable {
    /// Fully qualified service name, e.g. `scheduler.v2.Scheduler`.
    var serviceName: String { get }
    var methods: [RPCServerMethod] { get }
}

/// Path → method lookup built once from the hosted services.
public struct RPCRouter: Sendable {
    private var table: [String: RPCServerMethod] = [:]
    public private(set) var serviceNames: [String] = []

    public init(_ services: [any RPCServiceProvider]) {
        for service in services {
            if !serviceNames.contains(service.serviceName) { serviceNames.append(service.serviceName) }
            for m in service.methods { table["/\(service.serviceName)/\(m.name)"] = m }
        }
    }

    public func method(forPath path: String) -> RPCServerMethod? { table[path] }

    /// The UNIMPLEMENTED error for a path nobody serves, worded like grpc does.
    public func unimplemented(path: String) -> RPCError {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        if parts.count == 2, !serviceNames.contains(String(parts[0])) {
            return RPCError(code: .unimplemented, message: "unknown service \(parts[0])")
        }
        return RPCError(code: .unimplemented, message: "unknown method \(path)")
    }
}
