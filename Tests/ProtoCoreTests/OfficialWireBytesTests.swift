import Testing
import ProtoCore
@testable import GeneratedAPI

/// The same values as Tests/integration/test_proto_wire.py, where the official
/// dragonfly-api Python bindings produce and accept exactly these bytes. Keep in step.
@Suite struct OfficialWireBytesTests {
    static func hex(_ bytes: [UInt8]) -> String {
        let digits: [Character] = Array("0123456789abcdef")
        var out = ""
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return out
    }

    static func peer() -> Common_V2_Peer {
        var task = Common_V2_Task()
        task.id = "t"
        task.type = .persistentCache
        task.url = "http://o/b"
        task.digest = ""
        task.filteredQueryParams = ["x", "y"]
        task.requestHeader = ["b": "2", "a": "1"]
        task.contentLength = 1 << 40
        task.pieceCount = 3
        task.createdAt = Google_Protobuf_Timestamp(seconds: 1_700_000_000, nanos: 5)
        var piece = Common_V2_Piece()
        piece.number = 150
        piece.parentId = ""
        piece.length = 4_194_304
        piece.digest = "crc32:1"
        piece.content = [0x00, 0xFF]
        piece.trafficType = .backToSource
        piece.cost = Google_Protobuf_Duration(seconds: -1, nanos: -2)
        var peer = Common_V2_Peer()
        peer.id = "p"
        peer.priority = .level6
        peer.needBackToSource = true
        peer.concurrentPieceCount = 0
        peer.range = Common_V2_Range()
        peer.task = task
        peer.pieces = [piece]
        return peer
    }

    @Test func peerWithOptionalsMapsAndNestedMessages() throws {
        let expected = "0a0170120018062231089601120020808080022a0763726333323a31320200ff3800421608ffffffffffffffffff01"
            + "10feffffffffffffffff013a3d0a017410021a0a687474703a2f2f6f2f6222003a01783a017942060a016112013142"
            + "060a01621201324880808080802050038201080880e2cfaa06100548016000"
        let peer = Self.peer()
        #expect(Self.hex(peer.serializedBytes()) == expected)
    }

    @Test func hostWithNegativeInt32AndDouble() {
        var host = Common_V2_Host()
        host.id = "h"
        host.ip = "10.0.0.1"
        host.port = -2
        host.downloadPort = 65001
        var cpu = Common_V2_CPU()
        cpu.logicalCount = 4
        cpu.percent = 12.5
        host.cpu = cpu
        #expect(Self.hex(host.serializedBytes()) == "0a0168220831302e302e302e3128feffffffffffffffff0130e9fb03620b0804190000000000002940")
    }

    @Test func announcePeerWithOneof() {
        var failed = Scheduler_V2_DownloadPieceFailedRequest()
        failed.temporary = true
        var announce = Scheduler_V2_AnnouncePeerRequest()
        announce.hostId = "h"
        announce.taskId = "t"
        announce.peerId = "p"
        announce.request = .downloadPieceFailedRequest(failed)
        #expect(Self.hex(announce.serializedBytes()) == "0a01681201741a017072021801")
    }
}
