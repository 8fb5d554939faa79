import Logging
import NIOCore
import NIOHTTP1

/// Answers one HTTP/1.1 request. Runs in a task of its own per connection; the writer
/// applies the client's backpressure.
public protocol HTTPResponder: Sendable {
    func respond(to request: HTTPRequest, writer: HTTPResponseWriter) async throws
}

/// Serves HTTP/1.1 on an accepted connection: keep-alive, one request at a time, streamed
/// responses. Request bodies are read and dropped (only GET and HEAD carry meaning here).
public enum HTTPConnection {
    /// Call on the channel's event loop, e.g. from a handler that sniffed the protocol.
    public static func serve(_ channel: any Channel, responder: some HTTPResponder, logger: Logger) throws {
        let sync = channel.pipeline.syncOperations
        try sync.configureHTTPServerPipeline(withErrorHandling: true)
        let wrapped = try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
            wrappingChannelSynchronously: channel)
        Task {
            do {
                try await wrapped.executeThenClose { inbound, outbound in
                    try await serveRequests(inbound, outbound, channel: channel, responder: responder)
                }
            } catch {
                logger.debug("HTTP/1.1 connection from \(channel.remoteAddress?.description ?? "?") ended: \(error)")
            }
        }
    }

    private static func serveRequests(_ inbound: NIOAsyncChannelInboundStream<HTTPServerRequestPart>,
                                      _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
                                      channel: any Channel, responder: some HTTPResponder) async throws {
        var parts = inbound.makeAsyncIterator()
        while let part = try await parts.next() {
            guard case .head(let head) = part else { continue }
            // Drain the body up to the end of this request. After CONNECT the parser stops
            // (what follows would be a tunnel), so there is no end to wait for.
            let tunnel = head.method == .CONNECT
            while !tunnel, let next = try await parts.next() {
                if case .end = next { break }
            }
            let request = HTTPRequest(head: head, remoteAddress: channel.remoteAddress)
            let writer = HTTPResponseWriter(outbound: outbound, channel: channel, isHEAD: head.method == .HEAD,
                                            keepAlive: head.isKeepAlive)
            do {
                try await responder.respond(to: request, writer: writer)
            } catch {
                if writer.headSent { throw error }
                try await writer.respond(.internalServerError, body: "internal error: \(error)\n")
            }
            guard writer.completed else {
                // The body was cut short on purpose (or failed): the client must see a
                // broken response, never a short one passed off as whole.
                try? await channel.close()
                return
            }
            if !head.isKeepAlive || tunnel {
                // Closing now would drop whatever the writer still holds (the tail of a
                // large body). The client closes once it has read the whole response, as
                // `Connection: close` asks; wait for that, for a while.
                let closer = Task {
                    try await Task.sleep(for: .seconds(30))
                    try? await channel.close()
                }
                while (try? await parts.next()) != nil {}
                closer.cancel()
                return
            }
        }
    }
}
