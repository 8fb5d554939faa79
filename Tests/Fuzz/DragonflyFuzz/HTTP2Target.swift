import Logging
import NIOCore
import NIOEmbedded
import RPCCore
@_spi(Fuzzing) import RPCTransport

/// Bytes from a client into a server connection: nghttp2's session, our callbacks and the
/// gRPC request checks, on an embedded channel. Every HEADERS reaches the router, which
/// serves nothing, so each call ends synchronously with UNIMPLEMENTED.
enum HTTP2Target {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    static let logger = Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }

    static func run(_ input: UnsafeRawBufferPointer) {
        // The first byte's low bit chooses whether the client preface is added, so the
        // fuzzer spends its time on frames yet can still mangle the preface.
        guard let flags = input.first else { return }
        let body = UnsafeRawBufferPointer(rebasing: input.dropFirst())
        let channel = EmbeddedChannel()
        do {
            try TransportFuzzing.addServerConnection(to: channel.pipeline.syncOperations, logger: logger)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
            var buffer = channel.allocator.buffer(capacity: preface.count + body.count)
            if flags & 1 == 0 { buffer.writeBytes(preface) }
            buffer.writeBytes(body)
            try channel.writeInbound(buffer)
        } catch {
            // A protocol error closes the connection: the outcome we want for bad input.
        }
        channel.embeddedEventLoop.run()
        while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }
}
