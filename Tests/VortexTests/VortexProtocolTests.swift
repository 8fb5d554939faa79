import Testing
import VortexProtocol

/// Hex → bytes, for vectors written out by hand from the protocol's documented layout.
func hex(_ s: String) -> [UInt8] {
    let chars = Array(s.filter { !$0.isWhitespace })
    return stride(from: 0, to: chars.count, by: 2).map { UInt8(String(chars[$0...$0 + 1]), radix: 16) ?? 0 }
}

@Suite struct VortexProtocolTests {
    // The header cases the protocol's own tests assert: id 42 / tag 0 / length 1024, and a
    // close header with id 123 and length 2048.
    @Test func headerIsIdTagAndBigEndianLength() {
        #expect(VortexHeader(id: 42, tag: .downloadPiece, length: 1024).bytes == [42, 0, 0, 0, 0x04, 0x00])
        #expect(VortexHeader(id: 123, tag: .close, length: 2048).bytes == [123, 254, 0, 0, 0x08, 0x00])
        #expect(VortexHeader([9, 255, 0x01, 0x02, 0x03, 0x04]) == VortexHeader(id: 9, tag: .error, length: 0x0102_0304))
        #expect(VortexHeader([1, 2, 3]) == nil)
        #expect(VortexHeader([1, 7, 0, 0, 0, 0])?.tag == .other(7))
    }

    @Test func downloadPieceIsSixtyFourHexCharactersAndAPieceNumber() throws {
        let task = String(repeating: "a", count: 64)
        let packet = try DownloadPieceRequest(taskID: task, pieceNumber: 42).packet(id: 0x12)
        #expect(packet == hex("12 00 00000044") + Array(repeating: 0x61, count: 64) + hex("0000002a"))
        #expect(packet.count == 74)
        #expect(try DownloadPieceRequest(value: packet[6...]) == DownloadPieceRequest(taskID: task, pieceNumber: 42))
        #expect(throws: VortexDecodingError.self) { try DownloadPieceRequest(taskID: "short", pieceNumber: 1).packet() }
        #expect(throws: VortexDecodingError.self) { try DownloadPieceRequest(value: packet[6..<73]) }
        // Not hex: cannot name a task.
        #expect(throws: VortexDecodingError.self) {
            try DownloadPieceRequest(value: Array(String(repeating: "Z", count: 64).utf8) + [0, 0, 0, 1])
        }
    }

    // number 42, offset 1024, length 5, digest crc32:907060870 (the IEEE CRC-32 of "hello"),
    // parent "peer-1", remote-peer traffic, cost 5 s, created 1693152000.
    static let helloPacket = hex("""
        34 01 00000046 00000042 0000002a 0000000000000400 0000000000000005
        0000000f 63726333323a393037303630383730 00000006 706565722d31 01 0000000000000005 0000000064eb7300
        """)
    static let helloMetadata = PieceContentMetadata(number: 42, offset: 1024, length: 5, digest: "crc32:907060870",
                                                    parentID: "peer-1", trafficType: 1, costSeconds: 5, createdAt: 1_693_152_000)

    @Test func pieceContentMetadataLayout() throws {
        #expect(Self.helloMetadata.packetHead(id: 0x34) == Self.helloPacket)
        #expect(try PieceContentMetadata(value: Self.helloPacket[6...]) == Self.helloMetadata)
        // The protocol's own case: 32-byte digest and a 14-byte parent id make 91 bytes of metadata.
        let m = PieceContentMetadata(number: 42, offset: 1024, length: 2048, digest: String(repeating: "a", count: 32),
                                     parentID: "test_parent_id", trafficType: 1, costSeconds: 5, createdAt: 1_693_152_000)
        #expect(m.value.count == 4 + 91)
        #expect(Array(m.value.prefix(4)) == [0, 0, 0, 91])
        // A metadata length that disagrees with the value, or a digest running past it.
        var wrong = Array(Self.helloPacket[6...])
        wrong[3] += 1
        #expect(throws: VortexDecodingError.self) { try PieceContentMetadata(value: wrong) }
        var runsOver = Array(Self.helloPacket[6...])
        runsOver[4 + 4 + 8 + 8 + 3] = 0xff
        #expect(throws: VortexDecodingError.self) { try PieceContentMetadata(value: runsOver) }
    }

    @Test func errorAndClosePackets() throws {
        let packet = VortexErrorPacket(code: .notFound, message: "piece 3 not found").packet(id: 7)
        #expect(packet == hex("07ff00000012 02") + Array("piece 3 not found".utf8))
        #expect(try VortexErrorPacket(value: packet[6...]) == VortexErrorPacket(code: .notFound, message: "piece 3 not found"))
        #expect(try VortexErrorPacket(value: [9]).code == .reserved(9))
        #expect(throws: VortexDecodingError.self) { try VortexErrorPacket(value: []) }
        #expect(VortexClose.packet(id: 5) == [5, 254, 0, 0, 0, 0])
    }

    @Test func responseParserTakesAPieceInAnyChunking() throws {
        let whole = Self.helloPacket + Array("hello".utf8)
        for size in [1, 2, 5, 7, whole.count] {
            var parser = VortexResponseParser()
            var result: VortexResponseParser.Response?
            for start in stride(from: 0, to: whole.count, by: size) {
                #expect(result == nil, "a response before its last byte")
                result = try parser.feed(whole[start..<min(start + size, whole.count)])
            }
            #expect(result == .piece(Self.helloMetadata, Array("hello".utf8)))
        }
    }

    @Test func responseParserReportsErrorCloseAndTruncation() throws {
        var parser = VortexResponseParser()
        #expect(try parser.feed(VortexErrorPacket(code: .internal, message: "disk").packet()) ==
                .error(VortexErrorPacket(code: .internal, message: "disk")))
        #expect(try parser.feed(VortexClose.packet()) == .close)
        // A truncated header: nothing yet, and the parser knows it is mid-packet.
        var truncated = VortexResponseParser()
        #expect(try truncated.feed(Self.helloPacket.prefix(4)) == nil)
        #expect(truncated.isMidResponse)
        #expect(truncated.progress == "4 of 6 header bytes")
        // A piece cut short.
        var short = VortexResponseParser()
        #expect(try short.feed(Self.helloPacket + Array("hel".utf8)) == nil)
        #expect(short.progress == "3 of 5 piece bytes")
    }

    @Test func responseParserRefusesOversizedLengthsBeforeBuffering() {
        // A value length of 4 GiB - 1 for piece content: refused from the header alone.
        var parser = VortexResponseParser()
        #expect(throws: VortexDecodingError.self) { try parser.feed([1, 1, 0xff, 0xff, 0xff, 0xff]) }
        // A piece longer than the child accepts: refused from the metadata, before its bytes.
        var small = VortexResponseParser(maxContent: 4)
        #expect(throws: VortexDecodingError.self) { try small.feed(Self.helloPacket) }
        // A request tag where an answer belongs.
        var confused = VortexResponseParser()
        #expect(throws: VortexDecodingError.self) { try confused.feed(VortexHeader(tag: .downloadPiece, length: 68).bytes) }
    }

    @Test func sixtyFourMebibytePieceThroughTheParser() throws {
        let length = 64 << 20
        var content = [UInt8](repeating: 0, count: length)
        for i in stride(from: 0, to: length, by: 4096) { content[i] = UInt8(truncatingIfNeeded: i >> 12) }
        let metadata = PieceContentMetadata(number: 7, offset: 7 * UInt64(length), length: UInt64(length), digest: "crc32:0")
        var parser = VortexResponseParser()
        var result = try parser.feed(metadata.packetHead())
        #expect(result == nil)
        for start in stride(from: 0, to: length, by: 1 << 20) where result == nil {
            result = try parser.feed(content[start..<start + (1 << 20)])
        }
        guard case .piece(let got, let bytes)? = result else {
            Issue.record("no piece")
            return
        }
        #expect(got == metadata)
        #expect(bytes == content)
    }

    @Test func requestParserServesRequestsAndRefusesBadOnes() throws {
        let task = String(repeating: "0123456789abcdef", count: 4)
        var parser = VortexRequestParser()
        let two = try DownloadPieceRequest(taskID: task, pieceNumber: 1).packet() + DownloadPieceRequest(taskID: task, pieceNumber: 2).packet()
        #expect(try parser.feed(two.prefix(80)) == [.downloadPiece(DownloadPieceRequest(taskID: task, pieceNumber: 1))])
        #expect(try parser.feed(two.dropFirst(80) + VortexClose.packet()) ==
                [.downloadPiece(DownloadPieceRequest(taskID: task, pieceNumber: 2)), .close])
        // A persistent-cache download (tag 4 in 0.1.5) is a request of its own kind.
        #expect(try parser.feed(DownloadPieceRequest(taskID: task, pieceNumber: 3, kind: .persistentCacheTask).packet()) ==
                [.downloadPiece(DownloadPieceRequest(taskID: task, pieceNumber: 3, kind: .persistentCacheTask))])
        // An in-memory cache task's (tag 6): skipped and reported, the stream goes on.
        #expect(try parser.feed(VortexHeader(tag: .other(6), length: 68).bytes + [UInt8](repeating: 0x30, count: 68)) ==
                [.unsupported(.other(6))])
        // An oversized download-piece length is refused from the header alone.
        var oversized = VortexRequestParser()
        #expect(throws: VortexDecodingError.self) { try oversized.feed([0, 0, 0xff, 0xff, 0xff, 0xff]) }
        // Answers are not requests.
        var confused = VortexRequestParser()
        #expect(throws: VortexDecodingError.self) { try confused.feed(VortexErrorPacket(code: .unknown, message: "").packet()) }
        var truncated = VortexRequestParser()
        #expect(try truncated.feed([0, 0, 0]) == [])
        #expect(truncated.pendingBytes == 3)
    }
}
