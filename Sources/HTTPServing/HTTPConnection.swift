import Logging
import NIOCore
import NIOHTTP1

/// Answers one HTTP/1.1 request. Runs in a task of its own per connection; the writer
/// applies the client's backpressure.
public protocol HTTPResponder: Sendable {
    func respond(to request: HTTPRequest, writer: HTTPResponseWriter) async throws
}

/// Serves HTTP/1.1 on an accepted connection: keep-alive, one request at a time, streamed
/// responses. A request's body is read (up to `maxBodyBytes`) before it is answered, and
/// kept for the responder when `keepsBodies` says so.
public enum HTTPConnection {
    /// Call on the channel's event loop, e.g. from a handler that sniffed the protocol.
    public static func serve(_ channel: any Channel, responder: some HTTPResponder, limits: HTTPLimits = HTTPLimits(),
                             logger: Logger) throws {
        let sync = channel.pipeline.syncOperations
        try sync.configureHTTPServerPipeline(withErrorHandling: true)
        let wrapped = try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
            wrappingChannelSynchronously: channel)
        Task {
            do {
                try await wrapped.executeThenClose { inbound, outbound in
                    try await serveRequests(inbound, outbound, channel: channel, responder: responder, limits: limits)
                }
            } catch {
                logger.debug("HTTP/1.1 connection from \(channel.remoteAddress?.description ?? "?") ended: \(error)")
            }
        }
    }

    private static func serveRequests(_ inbound: NIOAsyncChannelInboundStream<HTTPServerRequestPart>,
                                      _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
                                      channel: any Channel, responder: some HTTPResponder, limits: HTTPLimits) async throws {
        var parts = inbound.makeAsyncIterator()
        while true {
            // A client gets `requestTimeout` to send its head and body; a slow one is dropped.
            let watchdog = Task {
                try await Task.sleep(for: limits.requestTimeout)
                try? await channel.close()
            }
            defer { watchdog.cancel() }
            guard let part = try await parts.next() else { return }
            guard case .head(let head) = part else { continue }
            // Drain the body up to the end of this request. After CONNECT the parser stops
            // (what follows would be a tunnel), so there is no end to wait for.
            let tunnel = head.method == .CONNECT
            var body = ByteBuffer()
            var bodyBytes = 0
            while !tunnel, let next = try await parts.next() {
                if case .body(var chunk) = next {
                    bodyBytes += chunk.readableBytes
                    if limits.keepsBodies && bodyBytes <= limits.maxBodyBytes { body.writeBuffer(&chunk) }
                }
                if case .end = next { break }
                if bodyBytes > limits.maxBodyBytes { break }
            }
            watchdog.cancel()
            let writer = HTTPResponseWriter(outbound: outbound, channel: channel, isHEAD: head.method == .HEAD,
                                            keepAlive: head.isKeepAlive)
            if let refusal = Self.refusal(head, bodyBytes: bodyBytes, limits: limits) {
                // Whatever else the client sends is not served: answer, then close as after
                // any last response, so a client still sending its body reads the answer
                // instead of a reset.
                try await writer.respond(refusal.status, headers: ["Connection": "close"], body: refusal.message + "\n")
                try await closeAfterResponse(channel, &parts, limits: limits)
                return
            }
            let request = HTTPRequest(head: head, remoteAddress: channel.remoteAddress, body: body)
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
                try await closeAfterResponse(channel, &parts, limits: limits)
                return
            }
        }
    }

    /// How long a client may keep sending after the response that ended its connection.
    static let lingerTime: Duration = .seconds(2)

    /// Ends a connection whose response said `Connection: close`. A full close at once would
    /// drop what NIO still holds to write (the tail of a large body); waiting for the client
    /// to close first left the socket open 30 s with clients that wait for the server, as
    /// HTTP/1.1 has the server close. So: half-close, which NIO carries out after the last
    /// queued byte, giving the client its end of file at once; then read and drop whatever it
    /// still sends, briefly, because closing a socket with unread input sends a reset that
    /// can destroy the response in the client's receive buffer; then close.
    private static func closeAfterResponse(_ channel: any Channel,
                                           _ parts: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator,
                                           limits: HTTPLimits) async throws {
        // A client that stops reading would keep the half-close pending for ever.
        let stalled = Task {
            try await Task.sleep(for: limits.requestTimeout)
            try? await channel.close()
        }
        defer { stalled.cancel() }
        do {
            try await channel.close(mode: .output)
        } catch {
            try? await channel.close()
            return
        }
        let lingering = Task {
            try await Task.sleep(for: lingerTime)
            try? await channel.close()
        }
        defer { lingering.cancel() }
        while (try? await parts.next()) != nil {}
        try? await channel.close()
    }

    /// The answer to a request over the limits, if it is.
    static func refusal(_ head: HTTPRequestHead, bodyBytes: Int, limits: HTTPLimits)
        -> (status: HTTPResponseStatus, message: String)? {
        if head.uri.utf8.count > limits.maxURILength {
            return (.uriTooLong, "the request target is longer than \(limits.maxURILength) bytes")
        }
        let headerBytes = head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
        if headerBytes > limits.maxHeaderBytes {
            return (.requestHeaderFieldsTooLarge, "the request headers are larger than \(limits.maxHeaderBytes) bytes")
        }
        if bodyBytes > limits.maxBodyBytes {
            return (.payloadTooLarge, "the request body is larger than \(limits.maxBodyBytes) bytes")
        }
        return nil
    }
}
