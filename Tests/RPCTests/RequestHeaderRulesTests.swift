import CNGHTTP2
import Testing
@testable import RPCTransport

private func violation(_ fields: [(String, String)], block: RequestHeaderRules.Block = .request) -> RequestHeaderRules.Violation? {
    var rules = RequestHeaderRules(block: block)
    for (name, value) in fields {
        Array(name.utf8).withUnsafeBufferPointer { n in
            Array(value.utf8).withUnsafeBufferPointer { v in rules.add(name: n, value: v) }
        }
    }
    return rules.finish()
}

private let grpcRequest: [(String, String)] = [
    (":method", "POST"), (":scheme", "http"), (":path", "/a.B/C"), (":authority", "localhost"),
    ("content-type", "application/grpc"), ("te", "trailers"),
]

@Suite struct RequestHeaderRulesTests {
    @Test func anAuthorityThatIsASocketPathIsAccepted() {
        var fields = grpcRequest
        fields[3] = (":authority", "/run/dragonfly/dfdaemon.sock")
        #expect(violation(fields) == nil)
        #expect(violation(grpcRequest + [("host", "/tmp/x.sock")]) == nil)
        #expect(violation(grpcRequest) == nil)
    }

    @Test(arguments: [
        (grpcRequest.filter { $0.0 != ":path" }, RequestHeaderRules.Violation.missing(":path")),
        (grpcRequest.filter { $0.0 != ":method" }, .missing(":method")),
        (grpcRequest.filter { $0.0 != ":scheme" }, .missing(":scheme")),
        ([("content-type", "application/grpc")] + grpcRequest, .pseudoHeaderAfterRegular(":method")),
        ([(":path", "/again")] + grpcRequest, .repeatedPseudoHeader(":path")),
        (grpcRequest + [("Content-Type", "x")], .invalidName),
        (grpcRequest + [("bad name", "x")], .invalidName),
        (grpcRequest + [("connection", "close")], .connectionSpecific("connection")),
        (grpcRequest + [("transfer-encoding", "chunked")], .connectionSpecific("transfer-encoding")),
        (grpcRequest.filter { $0.0 != "te" } + [("te", "gzip")], .teOtherThanTrailers),
        (grpcRequest + [("x-a", "one\r\ntwo")], .invalidValue("x-a")),
        (grpcRequest + [("x-a", " padded")], .invalidValue("x-a")),
        ([(":method", "POST"), (":scheme", "http"), (":path", "a.B/C")], .invalidPath),
        ([(":method", "GET"), (":scheme", "http"), (":path", "*")], .invalidPath),
        ([(":method", "POST"), (":scheme", "http"), (":path", "/"), (":status", "200")], .unknownPseudoHeader(":status")),
        ([(":method", "POST"), (":scheme", "http"), (":path", "/"), (":authority", "a\u{0}b")], .invalidValue(":authority")),
    ] as [([(String, String)], RequestHeaderRules.Violation)])
    func brokenRulesAreNamed(fields: [(String, String)], expected: RequestHeaderRules.Violation) {
        #expect(violation(fields) == expected)
    }

    @Test func trailersCarryNoPseudoHeaders() {
        #expect(violation([("grpc-status", "0")], block: .trailers) == nil)
        #expect(violation([(":path", "/x")], block: .trailers) == .pseudoHeaderInTrailers(":path"))
        #expect(violation([(":method", "OPTIONS"), (":scheme", "http"), (":path", "*")]) == nil)
        #expect(violation([(":method", "CONNECT"), (":authority", "example:443")]) == nil)
    }

    /// Through a real nghttp2 pair: the path authority reaches the delegate, a malformed
    /// request is reset with PROTOCOL_ERROR and never reaches it.
    @Test func theServerSessionAppliesTheRules() throws {
        let client = try HTTP2Session(role: .client)
        let server = try HTTP2Session(role: .server)
        let c = RecordingDelegate(), s = RecordingDelegate()
        client.delegate = c
        server.delegate = s
        var socketPath = grpcRequest
        socketPath[3] = (":authority", "/run/dragonfly/dfdaemon.sock")
        let good = client.submitRequest(socketPath)
        let bad = client.submitRequest(grpcRequest + [("connection", "close")])
        try exchange(client, server)
        #expect(s.headers[good]?.first?.contains { $0 == (":authority", "/run/dragonfly/dfdaemon.sock") } == true)
        #expect(s.headers[bad] == nil)
        #expect(c.closed[bad] == UInt32(NGHTTP2_PROTOCOL_ERROR.rawValue))
        #expect(c.closed[good] == nil)
    }
}
