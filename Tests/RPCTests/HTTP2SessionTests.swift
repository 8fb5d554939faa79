import NIOCore
import Testing
@testable import RPCTransport

/// Records what a session reports and serves queued outbound data.
final class RecordingDelegate: HTTP2SessionDelegate {
    var headers: [Int32: [[(String, String)]]] = [:]
    var data: [Int32: [UInt8]] = [:]
    var ended: Set<Int32> = []
    var closed: [Int32: UInt32] = [:]
    var outbound: [Int32: [UInt8]] = [:]
    var finishWith: [Int32: [(String, String)]?] = [:]
    var consumeOnReceive = true

    func http2Session(_ s: HTTP2Session, headersFor id: Int32, _ h: [(String, String)], endStream: Bool) {
        headers[id, default: []].append(h)
        if endStream { ended.insert(id) }
    }
    func http2Session(_ s: HTTP2Session, dataFor id: Int32, _ bytes: UnsafeRawBufferPointer) {
        data[id, default: []] += bytes
        if consumeOnReceive { s.consume(streamID: id, count: bytes.count) }
    }
    func http2Session(_ s: HTTP2Session, endStreamFor id: Int32) { ended.insert(id) }
    func http2Session(_ s: HTTP2Session, streamClosed id: Int32, errorCode: UInt32) { closed[id] = errorCode }
    func http2Session(_ s: HTTP2Session, readDataFor id: Int32, max: Int) -> HTTP2DataRead {
        let queued = outbound[id] ?? []
        let n = min(max, queued.count)
        if n == queued.count, let trailers = finishWith[id] { return .end(n, trailers: trailers) }
        return n > 0 ? .bytes(n) : .deferred
    }
    func http2Session(_ s: HTTP2Session, sendDataFor id: Int32, count: Int, to out: OutputAssembler) {
        var queued = outbound[id] ?? []
        out.append(ByteBuffer(bytes: queued[0..<count]))
        queued.removeFirst(count)
        outbound[id] = queued
    }
    func http2Session(_ s: HTTP2Session, goAwayReceived lastStreamID: Int32, errorCode: UInt32) {}
    func http2SessionPingAcked(_ s: HTTP2Session) {}
}

/// Moves bytes between two sessions until neither has anything to send.
func exchange(_ a: HTTP2Session, _ b: HTTP2Session, rounds: Int = 100) throws {
    for _ in 0..<rounds {
        let fromA = try drained(a), fromB = try drained(b)
        if fromA.isEmpty && fromB.isEmpty { return }
        try fromA.withUnsafeBytes { try b.receive($0) }
        try fromB.withUnsafeBytes { try a.receive($0) }
    }
}

/// Everything a session sends now, as one array.
func drained(_ session: HTTP2Session) throws -> [UInt8] {
    let out = OutputAssembler(allocator: ByteBufferAllocator())
    try session.drainOutput(into: out)
    return out.take().flatMap { Array($0.readableBytesView) }
}

@Suite struct HTTP2SessionTests {
    @Test func requestWithDataAndResponseWithTrailersCrossInMemory() throws {
        let client = try HTTP2Session(role: .client)
        let server = try HTTP2Session(role: .server)
        let c = RecordingDelegate(), s = RecordingDelegate()
        client.delegate = c
        server.delegate = s

        let id = client.submitRequest([(":method", "POST"), (":scheme", "http"), (":path", "/a.B/C"),
                                       (":authority", "x"), ("content-type", "application/grpc")])
        #expect(id == 1)
        c.outbound[id] = Array(repeating: 0xAB, count: 100_000)
        c.finishWith[id] = .some(nil)
        try exchange(client, server)

        #expect(s.headers[id]?.first?.contains { $0 == (":path", "/a.B/C") } == true)
        #expect(s.data[id]?.count == 100_000)
        #expect(s.ended.contains(id))

        s.outbound[id] = [1, 2, 3]
        s.finishWith[id] = [("grpc-status", "0")]
        server.submitResponse(streamID: id, [(":status", "200"), ("content-type", "application/grpc")], endStream: false)
        try exchange(client, server)

        #expect(c.data[id] == [1, 2, 3])
        #expect(c.headers[id]?.count == 2)
        #expect(c.headers[id]?.last?.first ?? ("", "") == ("grpc-status", "0"))
        #expect(c.closed[id] == 0)
    }

    @Test func unconsumedDataStallsTheStreamUntilConsumed() throws {
        let client = try HTTP2Session(role: .client)
        let server = try HTTP2Session(role: .server, settings: .init(initialWindowSize: 65_535))
        let c = RecordingDelegate(), s = RecordingDelegate()
        s.consumeOnReceive = false
        client.delegate = c
        server.delegate = s
        let id = client.submitRequest([(":method", "POST"), (":scheme", "http"), (":path", "/p"), (":authority", "x")])
        c.outbound[id] = Array(repeating: 1, count: 300_000)
        try exchange(client, server)
        let received = s.data[id]?.count ?? 0
        #expect(received == 65_535, "the window bounds what a non-consuming reader receives")

        server.consume(streamID: id, count: received)
        try exchange(client, server)
        #expect((s.data[id]?.count ?? 0) > received)
    }

    @Test func resetStreamReachesThePeer() throws {
        let client = try HTTP2Session(role: .client)
        let server = try HTTP2Session(role: .server)
        let c = RecordingDelegate(), s = RecordingDelegate()
        client.delegate = c
        server.delegate = s
        let id = client.submitRequest([(":method", "POST"), (":scheme", "http"), (":path", "/p"), (":authority", "x")])
        try exchange(client, server)
        client.resetStream(id, errorCode: 8)
        try exchange(client, server)
        #expect(s.closed[id] == 8)
    }

    @Test func garbageInputIsAConnectionError() throws {
        let server = try HTTP2Session(role: .server)
        let delegate = RecordingDelegate()
        server.delegate = delegate
        let garbage = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        #expect(throws: HTTP2ConnectionError.self) {
            try garbage.withUnsafeBytes { try server.receive($0) }
        }
        withExtendedLifetime(delegate) {}
    }
}
