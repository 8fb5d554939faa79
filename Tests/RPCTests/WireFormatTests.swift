import Testing
@testable import RPCTransport
import ProtoCore
import RPCCore

@Suite struct TimeoutHeaderTests {
    @Test(arguments: [
        ("1S", Duration.seconds(1)), ("100m", .milliseconds(100)), ("5u", .microseconds(5)),
        ("7n", .nanoseconds(7)), ("2M", .seconds(120)), ("1H", .seconds(3600)), ("99999999S", .seconds(99_999_999)),
    ])
    func parsesValidTimeouts(_ text: String, _ expected: Duration) {
        #expect(GRPCTimeout.parse(text) == expected)
    }

    @Test(arguments: ["", "S", "1", "1s", "123456789S", "-1S", "1.5S", "10 m"])
    func rejectsMalformedTimeouts(_ text: String) {
        #expect(GRPCTimeout.parse(text) == nil)
    }

    @Test func formatsWithinEightDigitsAndRoundsUp() {
        #expect(GRPCTimeout.format(.milliseconds(250)) == "250000u")
        #expect(GRPCTimeout.format(.seconds(30)) == "30000000u")
        #expect(GRPCTimeout.format(.seconds(1000)) == "1000000m")
        #expect(GRPCTimeout.format(.nanoseconds(1500)) == "1500n")
        for d in [Duration.seconds(3), .milliseconds(1), .seconds(86_400 * 30)] {
            let text = GRPCTimeout.format(d)
            #expect(text.count <= 9)
            #expect((GRPCTimeout.parse(text) ?? .zero) >= d)
        }
    }
}

@Suite struct StatusMessageEncodingTests {
    @Test func specialStatusMessageRoundTrips() {
        let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
        let encoded = PercentEncoding.encode(message)
        #expect(encoded.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7e })
        #expect(encoded.hasPrefix("%09%0A"))
        #expect(PercentEncoding.decode(encoded) == message)
    }

    @Test func percentItselfIsEscapedAndBadEscapesSurvive() {
        #expect(PercentEncoding.encode("50%") == "50%25")
        #expect(PercentEncoding.decode("%zz%4") == "%zz%4")
    }

    @Test(arguments: [(400, StatusCode.internal), (401, .unauthenticated), (403, .permissionDenied),
                      (404, .unimplemented), (429, .unavailable), (502, .unavailable), (503, .unavailable),
                      (504, .unavailable), (500, .unknown)])
    func httpStatusMapsToGRPCCode(_ http: Int, _ code: StatusCode) {
        #expect(StatusCode.fromHTTPStatus(http) == code)
    }
}

@Suite struct MessageFramingTests {
    @Test func deframesAcrossArbitrarySplits() throws {
        let messages: [[UInt8]] = [[], [1, 2, 3], Array(repeating: 7, count: 70_000)]
        let wire = messages.flatMap { MessageFraming.frame($0) }
        for chunk in [1, 3, 5, 4096, wire.count] {
            var deframer = MessageDeframer(maxMessageSize: 1 << 20)
            var out: [[UInt8]] = []
            var i = 0
            while i < wire.count {
                deframer.append(Array(wire[i..<min(i + chunk, wire.count)]))
                while let m = try deframer.next() { out.append(m) }
                i += chunk
            }
            #expect(out == messages)
            #expect(deframer.bufferedCount == 0)
        }
    }

    @Test func oversizedMessageIsRejectedFromItsPrefixAndNothingOfItIsBuffered() {
        var deframer = MessageDeframer(maxMessageSize: 100)
        deframer.append([0, 0, 0, 0, 101] + [UInt8](repeating: 1, count: 101))
        #expect(deframer.bufferedCount == 0)
        #expect(throws: RPCError.self) { _ = try deframer.next() }
        do { _ = try deframer.next() } catch { #expect(error.code == .resourceExhausted) }
    }

    @Test func invalidFlagIsAnError() {
        var deframer = MessageDeframer(maxMessageSize: 100)
        deframer.append([9, 0, 0, 0, 0])
        do { _ = try deframer.next(); Issue.record("expected an error") } catch { #expect(error.code == .internal) }
    }

    @Test func gzipMessagesAreInflated() throws {
        let body = Array("hello hello hello hello".utf8)
        var deframer = MessageDeframer(maxMessageSize: 1000, encoding: "gzip")
        deframer.append(MessageFraming.frame(Gzip.compress(body), compressed: true))
        #expect(try deframer.next() == body)
    }

    @Test func compressedWithoutEncodingIsAnError() {
        var deframer = MessageDeframer(maxMessageSize: 1000)
        deframer.append(MessageFraming.frame([1, 2], compressed: true))
        do { _ = try deframer.next(); Issue.record("expected an error") } catch { #expect(error.code == .internal) }
    }

    @Test func gzipBombIsStoppedAtTheLimit() {
        let body = [UInt8](repeating: 0, count: 1 << 20)
        var deframer = MessageDeframer(maxMessageSize: 4096, encoding: "gzip")
        deframer.append(MessageFraming.frame(Gzip.compress(body), compressed: true))
        do { _ = try deframer.next(); Issue.record("expected an error") } catch { #expect(error.code == .resourceExhausted) }
    }
}

@Suite struct Base64Tests {
    @Test(arguments: [[], [0], [0, 1], [0, 1, 2], [255, 254, 253, 252]] as [[UInt8]])
    func roundTrips(_ bytes: [UInt8]) {
        #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        #expect(Base64.decode(Base64.encode(bytes, padded: false)) == bytes)
    }

    @Test func rejectsGarbage() {
        #expect(Base64.decode("ab$d") == nil)
    }
}

extension MessageFraming {
    /// A framed message as bytes, as the wire carries it.
    static func frame(_ message: [UInt8], compressed: Bool = false) -> [UInt8] {
        Array(framed(message, compressed: compressed).readableBytesView)
    }
}
