import Foundation
import GeneratedAPI
import ProtoCore

// Runs every allocation path of the protobuf-c runtime (arena, unpack, free, failed
// unpack) in a loop, so that under AddressSanitizer a leak shows as many lost blocks, not
// one. Built alone by tools/leak-check.sh: it needs only the message layer, not the whole
// package. Exits 1 if any round trip is wrong.

func message() -> Common_V2_Peer {
    var piece = Common_V2_Piece()
    piece.number = 3
    piece.offset = 1 << 33
    piece.length = 1 << 22
    piece.digest = "crc32:99"
    piece.content = [9, 0, 255]
    piece.trafficType = .remotePeer
    piece.cost = Google_Protobuf_Duration(seconds: 2, nanos: 5)
    var task = Common_V2_Task()
    task.id = "leak-task"
    task.url = "https://origin.example/file?a=1"
    task.filteredQueryParams = ["a", "ü"]
    task.requestHeader = ["Range": "bytes=0-1", "": "x"]
    task.pieces = [piece, Common_V2_Piece()]
    task.createdAt = Google_Protobuf_Timestamp(seconds: 1, nanos: 2)
    var peer = Common_V2_Peer()
    peer.id = "leak-peer"
    peer.range = Common_V2_Range()
    peer.task = task
    peer.concurrentPieceCount = 0
    return peer
}

func check(_ ok: Bool, _ what: String) {
    if !ok {
        FileHandle.standardError.write(Data("leak loop: \(what) did not round-trip\n".utf8))
        exit(1)
    }
}

let iterations = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 200
let peer = message()
var list = Grpc_Health_V1_HealthListResponse()
list.statuses = ["a": Grpc_Health_V1_HealthCheckResponse(), "b": Grpc_Health_V1_HealthCheckResponse()]
var announce = Scheduler_V2_AnnouncePeerRequest()
announce.request = .downloadPieceFailedRequest(Scheduler_V2_DownloadPieceFailedRequest())
guard let descriptor = ProtoFileRegistry.file(named: "google/protobuf/descriptor.proto") else {
    check(false, "the descriptor registry")
    exit(1)
}
var truncated = peer.serializedBytes()
truncated.removeLast(3)
for _ in 0..<iterations {
    check((try? Common_V2_Peer(serializedBytes: peer.serializedBytes())) == peer, "a nested peer")
    check((try? Grpc_Health_V1_HealthListResponse(serializedBytes: list.serializedBytes())) == list, "a map")
    check((try? Scheduler_V2_AnnouncePeerRequest(serializedBytes: announce.serializedBytes())) == announce, "a oneof")
    let file = try? Google_Protobuf_FileDescriptorProto(serializedBytes: descriptor.serializedDescriptor)
    check(file?.serializedBytes().count == descriptor.serializedDescriptor.count, "a file descriptor")
    // A failure part-way through a nested message must free what was unpacked so far.
    check((try? Common_V2_Peer(serializedBytes: truncated)) == nil, "a truncated message (it must fail)")
}
print("leak loop: \(iterations) iterations")
