import Logging
import NIOCore
import NIOPosix

/// A plaintext HTTP/1.1 listener of its own, for when the shared port cannot carry HTTP/1.1
/// (it serves gRPC over TLS).
public final class HTTPListener: Sendable {
    private let channel: any Channel

    private init(channel: any Channel) { self.channel = channel }

    public var port: Int { channel.localAddress?.port ?? 0 }

    public static func start(host: String, port: Int, responder: some HTTPResponder, limits: HTTPLimits,
                             logger: Logger) async throws -> HTTPListener {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try HTTPConnection.serve(channel, responder: responder, limits: limits, logger: logger)
                }
            }
        return HTTPListener(channel: try await bootstrap.bind(host: host, port: port).get())
    }

    public func stop() async {
        try? await channel.close()
    }
}
