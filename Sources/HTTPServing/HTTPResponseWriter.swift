import NIOCore
import NIOHTTP1
import Locking

/// Writes one response: a head, body chunks as they come (each write waits while the
/// client is slow), then the end. A response whose body stops early is never ended, so
/// the connection is closed instead.
public final class HTTPResponseWriter: Sendable {
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    private let channel: any Channel
    private let isHEAD: Bool
    private let keepAlive: Bool
    private struct State {
        var headSent = false
        var completed = false
        var clientGone = false
        var status: HTTPResponseStatus?
        var bytes = 0
        var declaredLength: Int?
    }
    private let state = Locked(State())

    init(outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, channel: any Channel, isHEAD: Bool, keepAlive: Bool) {
        self.outbound = outbound
        self.channel = channel
        self.isHEAD = isHEAD
        self.keepAlive = keepAlive
    }

    public var headSent: Bool { state.withLock { $0.headSent } }
    public var completed: Bool { state.withLock { $0.completed } }
    /// True once a write found the connection closed: the client hung up (a registry ping
    /// reads the head and closes) or stalled until it was dropped. What was not written
    /// then, the client had chosen not to take.
    public var clientGone: Bool { state.withLock { $0.clientGone } }
    public var status: HTTPResponseStatus? { state.withLock { $0.status } }
    /// Body bytes written so far.
    public var bodyBytes: Int { state.withLock { $0.bytes } }

    public func writeHead(_ status: HTTPResponseStatus, headers: HTTPHeaders) async throws {
        var h = headers
        if !keepAlive { h.replaceOrAdd(name: "Connection", value: "close") }
        let declared = h.first(name: "Content-Length").flatMap(Int.init)
        state.withLock { $0.headSent = true; $0.status = status; $0.declaredLength = declared }
        try await send(.head(HTTPResponseHead(version: .http1_1, status: status, headers: h)))
    }

    public func writeBody(_ bytes: some Collection<UInt8>) async throws {
        guard !isHEAD, !bytes.isEmpty else { return }
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try await writeBody(buffer)
    }

    public func writeBody(_ buffer: ByteBuffer) async throws {
        guard !isHEAD, buffer.readableBytes > 0 else { return }
        state.withLock { $0.bytes += buffer.readableBytes }
        try await send(.body(.byteBuffer(buffer)))
    }

    public func end() async throws {
        do {
            try await send(.end(nil))
        } catch {
            // A client that read the whole declared body may close at once (Go's client does
            // with `Connection: close`), and the close can be seen before this end is
            // written. The end adds no byte to such a response: it was whole.
            guard bodyIsWhole else { throw error }
        }
        state.withLock { $0.completed = true }
    }

    private func send(_ part: HTTPServerResponsePart) async throws {
        do {
            try await outbound.write(part)
        } catch {
            state.withLock { $0.clientGone = true }
            throw error
        }
    }

    /// True when every byte of the response was handed to the connection: a HEAD, or as
    /// many body bytes as the head's Content-Length said.
    private var bodyIsWhole: Bool {
        state.withLock { s in s.headSent && (isHEAD || (s.declaredLength != nil && s.declaredLength == s.bytes)) }
    }

    /// A whole small response in one go.
    public func respond(_ status: HTTPResponseStatus, headers: HTTPHeaders = [:], contentType: String = "text/plain; charset=utf-8",
                        body: String) async throws {
        var h = headers
        let bytes = Array(body.utf8)
        if !h.contains(name: "Content-Type") { h.add(name: "Content-Type", value: contentType) }
        h.replaceOrAdd(name: "Content-Length", value: String(bytes.count))
        try await writeHead(status, headers: h)
        try await writeBody(bytes)
        try await end()
    }
}
