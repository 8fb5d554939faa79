import GeneratedAPI
import ProtoCore
@_spi(Fuzzing) import RPCTransport

/// gRPC length-prefixed framing (with gzip/deflate) into protobuf-c decodes of the
/// messages our services take. Any message that decodes must re-encode into bytes that
/// decode again to the same encoded size: a decode that accepts what it cannot express
/// would break that. A piece response is also decoded in place (`InPlaceBytes`), as
/// itself and with a content of 64 KiB or more appended (the in-place path's own case,
/// which inputs within `-max_len` cannot reach otherwise), and must agree with the plain
/// decode.
enum GRPCMessageTarget {
    static let encodings: [String?] = [nil, "identity", "gzip", "deflate"]

    static func run(_ input: UnsafeRawBufferPointer) {
        guard let first = input.first else { return }
        let messages = TransportFuzzing.deframe(UnsafeRawBufferPointer(rebasing: input.dropFirst()), maxMessageSize: 1 << 20,
                                                encoding: encodings[Int(first) % encodings.count])
        for message in messages {
            roundTrip(Scheduler_V2_AnnouncePeerRequest.self, message)
            roundTrip(Scheduler_V2_AnnounceHostRequest.self, message)
            roundTrip(Dfdaemon_V2_DownloadTaskRequest.self, message)
            roundTrip(Dfdaemon_V2_DownloadTaskResponse.self, message)
            roundTrip(Manager_V2_UpdateSeedPeerRequest.self, message)
            roundTrip(Manager_V2_ListSchedulersRequest.self, message)
            roundTrip(Dfswift_Peer_V1_PieceResponse.self, message)
            inPlaceAgrees(message)
            inPlaceAgrees(withLargeContent(message))
        }
    }

    /// The largest content `withLargeContent` appends, made once: filling it per input cost
    /// most of the target's time.
    static let largeContent: [UInt8] = (0..<((64 << 10) + 255 * 3)).map { UInt8(truncatingIfNeeded: $0 &* 7) }

    /// `message` followed by a field 5 (the content) of at least 64 KiB, sized from the input.
    static func withLargeContent(_ message: [UInt8]) -> [UInt8] {
        let size = (64 << 10) + Int(message.last ?? 0) * 3
        var length = size
        var wire = message
        wire.reserveCapacity(message.count + 4 + size)
        wire.append(5 << 3 | 2)
        while length >= 0x80 {
            wire.append(UInt8(truncatingIfNeeded: length) | 0x80)
            length >>= 7
        }
        wire.append(UInt8(length))
        wire.append(contentsOf: largeContent[..<size])
        return wire
    }

    static func inPlaceAgrees(_ wire: [UInt8]) {
        typealias Response = Dfswift_Peer_V1_PieceResponse
        let plain = try? Response(serializedBytes: wire)
        let inPlace = try? InPlaceBytes<Response>(serializedBytes: wire)
        precondition((plain == nil) == (inPlace == nil), "the in-place decode and the plain decode disagree on whether it decodes")
        guard var plain, let inPlace else { return }
        precondition(Array(inPlace.bytes) == plain.content, "the in-place content differs from the plain decode's")
        precondition(inPlace.message.content.isEmpty, "the in-place message kept a content of its own")
        plain.content = []
        precondition(inPlace.message.serializedBytes() == plain.serializedBytes(), "the in-place envelope differs from the plain decode's")
    }

    static func roundTrip<M: ProtoMessage>(_ type: M.Type, _ bytes: [UInt8]) {
        guard let decoded = try? M(serializedBytes: bytes) else { return }
        let encoded = decoded.serializedBytes()
        guard let again = try? M(serializedBytes: encoded) else {
            fatalError("\(M.protoMessageName): our own encoding does not decode")
        }
        precondition(again.serializedBytes().count == encoded.count, "\(M.protoMessageName) changed size in a round trip")
    }
}
