import Logging
import NIOCore
import NIOPosix

/// Who decides whether an accepted connection is served: asked with the client's address
/// before anything is done for it, and told once an admitted connection is gone.
public protocol ConnectionAdmission: Sendable {
    /// Nil to serve the connection, or why it is closed at once.
    func refusal(for ip: String?) -> (any Error)?
    func closed(_ ip: String?)
}

/// A plaintext HTTP/1.1 listener of its own, for when the shared port cannot carry HTTP/1.1
/// (it serves gRPC over TLS).
public final class HTTPListener: Sendable {
    private let channel: any Channel

    private init(channel: any Channel) { self.channel = channel }

    public var port: Int { channel.localAddress?.port ?? 0 }

    public static func start(host: String, port: Int, responder: some HTTPResponder, limits: HTTPLimits,
                             admission: (any ConnectionAdmission)? = nil, logger: Logger) async throws -> HTTPListener {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                if let admission {
                    let ip = channel.remoteAddress?.ipAddress
                    if let refusal = admission.refusal(for: ip) { return channel.eventLoop.makeFailedFuture(refusal) }
                    channel.closeFuture.whenComplete { _ in admission.closed(ip) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try HTTPConnection.serve(channel, responder: responder, limits: limits, logger: logger)
                }
            }
        return HTTPListener(channel: try await bootstrap.bind(host: host, port: port).get())
    }

    public func stop() async {
        try? await channel.close()
    }
}
