import Logging
import NIOCore
import NIOEmbedded
import RPCCore
import Testing
@testable import RPCTransport

/// A closed connection must free its handler, its gRPC logic and the nghttp2 session: the
/// h2 fuzz target's leak check found them kept alive by a reference cycle.
@Suite struct ConnectionLifetimeTests {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    static let settings: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 0, 0]
    static let settingsAck: [UInt8] = [0, 0, 0, 4, 1, 0, 0, 0, 0]

    final class Box: @unchecked Sendable { weak var handler: HTTP2ConnectionHandler?; weak var logic: ServerConnection? }

    func serve(_ input: [UInt8], timeouts: Bool) throws -> Box {
        let box = Box()
        let channel = EmbeddedChannel()
        let logic = ServerConnection(router: RPCRouter([]), settings: ServerCallSettings(maxReceiveMessageSize: 1 << 16,
                                                                                         maxSendMessageSize: 1 << 16),
                                     logger: Logger(label: "test"), remoteAddress: "test")
        let handler = HTTP2ConnectionHandler(session: try HTTP2Session(role: .server), logic: logic, logger: Logger(label: "test"))
        if timeouts {
            handler.handshakeTimeout = .seconds(10)
            handler.idleTimeout = .seconds(10)
        }
        box.handler = handler
        box.logic = logic
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        var buffer = channel.allocator.buffer(capacity: input.count)
        buffer.writeBytes(input)
        try channel.writeInbound(buffer)
        channel.embeddedEventLoop.run()
        while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
        _ = try channel.finish(acceptAlreadyClosed: true)
        return box
    }

    @Test(arguments: [false, true])
    func anIdleConnectionIsFreedWhenClosed(timeouts: Bool) throws {
        let box = try serve(Self.preface + Self.settings + Self.settingsAck, timeouts: timeouts)
        #expect(box.handler == nil)
        #expect(box.logic == nil)
    }

    @Test func aConnectionThatNeverHandshakesIsFreedWhenClosed() throws {
        let box = try serve(Array("PRI * HT".utf8), timeouts: true)
        #expect(box.handler == nil)
        #expect(box.logic == nil)
    }
}
