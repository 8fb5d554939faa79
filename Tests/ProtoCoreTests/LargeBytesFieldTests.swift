import Testing
import GeneratedAPI
@testable import ProtoCore

/// Piece content goes around protobuf-c (appended after the packed rest, cut out before
/// unpacking); the bytes on the wire must still be what any protobuf library reads and writes.
@Suite struct LargeBytesFieldTests {
    func piece(_ size: Int) -> Dfswift_Peer_V1_PieceResponse {
        Dfswift_Peer_V1_PieceResponse.with {
            $0.number = 7
            $0.offset = 28 << 20
            $0.length = UInt64(size)
            $0.digest = "crc32:12345"
            $0.content = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        }
    }

    /// The encoding protobuf-c alone would give: fields in number order.
    func canonical(_ p: Dfswift_Peer_V1_PieceResponse) -> [UInt8] {
        var out: [UInt8] = []
        func varint(_ v: UInt64) { var v = v; while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }; out.append(UInt8(v)) }
        // proto3: fields at their default value are not sent.
        if p.number != 0 { varint(1 << 3); varint(UInt64(p.number)) }
        if p.offset != 0 { varint(2 << 3); varint(p.offset) }
        if p.length != 0 { varint(3 << 3); varint(p.length) }
        if !p.digest.isEmpty { varint(4 << 3 | 2); varint(UInt64(p.digest.utf8.count)); out += p.digest.utf8 }
        if !p.content.isEmpty { varint(5 << 3 | 2); varint(UInt64(p.content.count)); out += p.content }
        return out
    }

    /// A parent encodes a piece's envelope and then puts the content after it itself;
    /// the result is the message with its content, whatever the size.
    @Test(arguments: [0, 1, 127, 128, 16_383, 16_384, 4 << 20])
    func anEnvelopeFollowedByItsContentIsTheWholeMessage(_ size: Int) throws {
        let p = piece(size)
        var envelope = p
        envelope.content = []
        let wire = envelope.serializedBytes(beforeBytesField: 5, length: size) + p.content
        #expect(wire.count == canonical(p).count + (size == 0 ? 2 : 0), "an empty content still gets its key and length 0")
        #expect(try Dfswift_Peer_V1_PieceResponse(serializedBytes: wire) == p)
    }

    @Test(arguments: [0, 100, LargeBytesFields.threshold - 1, LargeBytesFields.threshold, 4 << 20])
    func roundTripsAtEverySize(_ size: Int) throws {
        let p = piece(size)
        let wire = p.serializedBytes()
        #expect(wire.count == canonical(p).count, "same fields, same size, whatever their order")
        #expect(try Dfswift_Peer_V1_PieceResponse(serializedBytes: wire) == p)
        // What other encoders send (content in its place among the fields) decodes the same.
        #expect(try Dfswift_Peer_V1_PieceResponse(serializedBytes: canonical(p)) == p)
    }

    @Test func aFieldSentTwiceKeepsItsLastValue() throws {
        let first = piece(LargeBytesFields.threshold + 10), second = piece(LargeBytesFields.threshold + 20)
        let wire = canonical(first) + canonical(second)
        #expect(try Dfswift_Peer_V1_PieceResponse(serializedBytes: wire).content == second.content)
    }

    @Test func truncatedOrLyingLengthsAreRejectedNotTrustedOrTrapped() {
        let wire = canonical(piece(LargeBytesFields.threshold * 2))
        for cut in [1, 2, 100, LargeBytesFields.threshold] {
            #expect(throws: (any Error).self) { try Dfswift_Peer_V1_PieceResponse(serializedBytes: Array(wire.dropLast(cut))) }
        }
        // A length varint claiming more than is there, and an endless varint.
        var lying = canonical(piece(LargeBytesFields.threshold))
        lying += [5 << 3 | 2, 0xff, 0xff, 0xff, 0xff, 0x0f] + [UInt8](repeating: 1, count: LargeBytesFields.threshold)
        #expect(throws: (any Error).self) { try Dfswift_Peer_V1_PieceResponse(serializedBytes: lying) }
        let endless = canonical(piece(LargeBytesFields.threshold)) + [UInt8](repeating: 0xff, count: 20)
        #expect(throws: (any Error).self) { try Dfswift_Peer_V1_PieceResponse(serializedBytes: endless) }
    }
}
