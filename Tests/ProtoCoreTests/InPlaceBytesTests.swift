import Testing
import GeneratedAPI
@testable import ProtoCore

/// A piece's content read where it arrived: the same message as the plain decode, with
/// the content as a slice of the wire array instead of an array of its own.
@Suite struct InPlaceBytesTests {
    typealias Answer = InPlaceBytes<Dfswift_Peer_V1_PieceResponse>

    func piece(_ size: Int) -> Dfswift_Peer_V1_PieceResponse {
        Dfswift_Peer_V1_PieceResponse.with {
            $0.number = 3
            $0.offset = 12 << 20
            $0.length = 16 << 20
            $0.digest = "crc32:99"
            $0.contentOffset = 1 << 20
            $0.content = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) }
        }
    }

    /// What a parent of ours sends: the envelope, then the content's key and length, then it.
    func asSent(_ p: Dfswift_Peer_V1_PieceResponse) -> [UInt8] {
        var envelope = p
        envelope.content = []
        return envelope.serializedBytes(beforeBytesField: 5, length: p.content.count) + p.content
    }

    func withoutContent(_ p: Dfswift_Peer_V1_PieceResponse) -> Dfswift_Peer_V1_PieceResponse {
        var e = p
        e.content = []
        return e
    }

    @Test(arguments: [LargeBytesFields.threshold, 1 << 20, (4 << 20) + 3])
    func contentSentLastStaysInTheWireArray(_ size: Int) throws {
        let p = piece(size)
        let wire = asSent(p)
        let answer = try Answer(serializedBytes: wire)
        #expect(answer.message == withoutContent(p))
        #expect(Array(answer.bytes) == p.content)
        // Not moved: the slice is the last `size` bytes of the very array that arrived.
        let wireEnd = wire.withUnsafeBytes { $0.baseAddress.map { $0 + wire.count } }
        let sliceEnd = answer.bytes.withUnsafeBytes { $0.baseAddress.map { $0 + size } }
        #expect(wireEnd != nil && sliceEnd == wireEnd)
        #expect(answer.bytes.endIndex == wire.count)
    }

    /// Other encoders' bytes, small contents and repeated fields decode as the plain
    /// decode does; only the content's storage differs.
    @Test func everyOtherLayoutDecodesAsThePlainDecode() throws {
        let large = piece(LargeBytesFields.threshold + 5)
        var envelope = withoutContent(large)
        envelope.digest = "crc32:1"
        let contentField = [UInt8](asSent(large).suffix(large.content.count + 4))  // key, 3-byte length, content
        #expect(contentField.count == large.content.count + 4)
        let layouts: [[UInt8]] = [
            asSent(piece(0)),
            asSent(piece(100)),
            asSent(piece(LargeBytesFields.threshold - 1)),
            // Content first, then the envelope: not at the end.
            contentField + withoutContent(large).serializedBytes(),
            // The content twice: the last one wins, as in any protobuf decoder.
            asSent(piece(LargeBytesFields.threshold + 9)) + asSent(large),
            // The envelope's fields again after the content: the later digest wins.
            asSent(large) + envelope.serializedBytes(),
        ]
        for wire in layouts {
            let plain = try Dfswift_Peer_V1_PieceResponse(serializedBytes: wire)
            let answer = try Answer(serializedBytes: wire)
            #expect(answer.message == withoutContent(plain))
            #expect(Array(answer.bytes) == plain.content)
            #expect(try Dfswift_Peer_V1_PieceResponse(serializedBytes: answer.serializedBytes()) == plain)
        }
    }

    @Test func truncatedOrLyingBytesAreRejected() {
        let wire = asSent(piece(LargeBytesFields.threshold * 2))
        for cut in [1, 100, LargeBytesFields.threshold] {
            #expect(throws: (any Error).self) { try Answer(serializedBytes: Array(wire.dropLast(cut))) }
        }
        var lying = withoutContent(piece(0)).serializedBytes()
        lying += [5 << 3 | 2, 0xff, 0xff, 0xff, 0xff, 0x0f] + [UInt8](repeating: 1, count: LargeBytesFields.threshold)
        #expect(throws: (any Error).self) { try Answer(serializedBytes: lying) }
    }
}
