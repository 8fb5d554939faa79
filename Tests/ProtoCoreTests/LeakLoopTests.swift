import Testing
import ProtoCore
@testable import GeneratedAPI

/// Exercises every allocation path (arena, unpack, free, failed unpack) in a loop, so a
/// leak shows up as many lost blocks under tools/leak-check.sh rather than one.
@Suite struct LeakLoopTests {
    static let iterations = 200

    @Test func encodeDecodeLoopLeavesNothingBehind() throws {
        let peer = RoundTripTests.samplePeer()
        var list = Grpc_Health_V1_HealthListResponse()
        list.statuses = ["a": Grpc_Health_V1_HealthCheckResponse(), "b": Grpc_Health_V1_HealthCheckResponse()]
        var announce = Scheduler_V2_AnnouncePeerRequest()
        announce.request = .downloadPieceFailedRequest(Scheduler_V2_DownloadPieceFailedRequest())
        let descriptor = try #require(ProtoFileRegistry.file(named: "google/protobuf/descriptor.proto"))
        for _ in 0..<Self.iterations {
            #expect(try Common_V2_Peer(serializedBytes: peer.serializedBytes()) == peer)
            #expect(try Grpc_Health_V1_HealthListResponse(serializedBytes: list.serializedBytes()) == list)
            #expect(try Scheduler_V2_AnnouncePeerRequest(serializedBytes: announce.serializedBytes()) == announce)
            let file = try Google_Protobuf_FileDescriptorProto(serializedBytes: descriptor.serializedDescriptor)
            #expect(file.serializedBytes().count == descriptor.serializedDescriptor.count)
            // A failure part-way through a nested message must free what was unpacked so far.
            var truncated = peer.serializedBytes()
            truncated.removeLast(3)
            #expect(throws: ProtoDecodingError.self) { _ = try Common_V2_Peer(serializedBytes: truncated) }
        }
    }
}
