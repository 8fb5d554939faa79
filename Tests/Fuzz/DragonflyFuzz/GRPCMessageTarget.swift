import GeneratedAPI
import ProtoCore
@_spi(Fuzzing) import RPCTransport

/// gRPC length-prefixed framing (with gzip/deflate) into protobuf-c decodes of the
/// messages our services take. Any message that decodes must re-encode into bytes that
/// decode again to the same encoded size: a decode that accepts what it cannot express
/// would break that.
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
        }
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
