import Testing
import ProtoCore
@testable import GeneratedAPI

/// Bytes worked out by hand from the protobuf encoding rules, so a bug shared by our
/// encoder and decoder cannot hide behind a round trip.
@Suite struct WireFormatTests {
    @Test func stringField() throws {
        var request = Grpc_Health_V1_HealthCheckRequest()
        request.service = "ab"
        let bytes: [UInt8] = [0x0A, 0x02, 0x61, 0x62]
        #expect(request.serializedBytes() == bytes)
        #expect(try Grpc_Health_V1_HealthCheckRequest(serializedBytes: bytes) == request)
    }

    @Test func negativeInt32IsTenByteVarint() throws {
        var status = Grpc_Testing_EchoStatus()
        status.code = -1
        let bytes: [UInt8] = [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        #expect(status.serializedBytes() == bytes)
        #expect(try Grpc_Testing_EchoStatus(serializedBytes: bytes).code == -1)
    }

    @Test func presentDefaultsAreSentAndImplicitDefaultsAreNot() {
        var piece = Common_V2_Piece()
        piece.number = 150        // 0x08 0x96 0x01
        piece.parentId = ""       // present: 0x12 0x00
        piece.offset = 0          // proto3 default: omitted
        piece.trafficType = .backToSource // present zero enum: 0x38 0x00
        #expect(piece.serializedBytes() == [0x08, 0x96, 0x01, 0x12, 0x00, 0x38, 0x00])
    }

    @Test func mapEntryIsANestedMessage() {
        var task = Common_V2_Task()
        task.requestHeader = ["a": "b"]
        #expect(task.serializedBytes() == [0x42, 0x06, 0x0A, 0x01, 0x61, 0x12, 0x01, 0x62])
    }

    @Test func repeatedScalarsArePacked() {
        var numbers = Grpc_Reflection_V1_ExtensionNumberResponse()
        numbers.extensionNumber = [1, 300]
        #expect(numbers.serializedBytes() == [0x12, 0x03, 0x01, 0xAC, 0x02])
    }

    @Test func unpackedRepeatedScalarsAreAccepted() throws {
        let bytes: [UInt8] = [0x10, 0x01, 0x10, 0xAC, 0x02]
        #expect(try Grpc_Reflection_V1_ExtensionNumberResponse(serializedBytes: bytes).extensionNumber == [1, 300])
    }

    @Test func emptySubMessageInOneof() {
        var request = Scheduler_V2_AnnouncePeerRequest()
        request.request = .registerPeerRequest(Scheduler_V2_RegisterPeerRequest())
        #expect(request.serializedBytes() == [0x22, 0x00])
    }

    @Test func unknownFieldsAreSkipped() throws {
        // Field 99 (varint) and field 100 (length-delimited) are not in the message.
        let bytes: [UInt8] = [0x98, 0x06, 0x05, 0xA2, 0x06, 0x01, 0x7A, 0x0A, 0x01, 0x78]
        #expect(try Grpc_Health_V1_HealthCheckRequest(serializedBytes: bytes).service == "x")
    }

    @Test func lastValueWinsForRepeatedSingularField() throws {
        let bytes: [UInt8] = [0x0A, 0x01, 0x61, 0x0A, 0x01, 0x62]
        #expect(try Grpc_Health_V1_HealthCheckRequest(serializedBytes: bytes).service == "b")
    }

    @Test(arguments: [
        [0x0A, 0x05, 0x61] as [UInt8],                  // length past the end
        [0x08] as [UInt8],                              // tag without its varint
        [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01] as [UInt8], // 11-byte varint
        [0x0F] as [UInt8],                              // wire type 7
        [0x00, 0x00] as [UInt8],                        // field number 0
        [0x0B, 0x0C] as [UInt8],                        // groups
        [0x22, 0x03, 0x0A, 0x05, 0x61] as [UInt8],      // truncated inside a sub-message
    ])
    func malformedBytesThrow(_ bytes: [UInt8]) {
        #expect(throws: ProtoDecodingError.self) {
            _ = try Scheduler_V2_AnnouncePeerRequest(serializedBytes: bytes)
        }
    }

    @Test func missingRequiredProto2FieldThrows() {
        // NamePart requires both name_part (1) and is_extension (2); only 1 is sent.
        #expect(throws: ProtoDecodingError.self) {
            _ = try Google_Protobuf_UninterpretedOption.NamePart(serializedBytes: [0x0A, 0x01, 0x61])
        }
    }

    @Test func emptyInputIsTheDefaultMessage() throws {
        #expect(try Common_V2_Peer(serializedBytes: []) == Common_V2_Peer())
    }
}
