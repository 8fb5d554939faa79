import Testing
import ProtoCore
@testable import GeneratedAPI

/// Encode then decode must give back an equal value, for every kind of field.
@Suite struct RoundTripTests {
    static func roundTrip<M: ProtoMessage>(_ message: M) throws -> M {
        try M(serializedBytes: message.serializedBytes())
    }

    static func samplePeer() -> Common_V2_Peer {
        var task = Common_V2_Task()
        task.id = "task-1"
        task.type = .persistentCache
        task.url = "https://example.com/blob?x=1"
        task.digest = "sha256:abc"
        task.filteredQueryParams = ["x", "", "y é ü 漢字"]
        task.requestHeader = ["Authorization": "Bearer t", "": "empty key", "X-Empty": ""]
        task.contentLength = UInt64.max
        task.pieceCount = 42
        var piece = Common_V2_Piece()
        piece.number = 7
        piece.parentId = ""
        piece.offset = 1 << 40
        piece.length = 4 << 20
        piece.digest = "crc32:1234"
        piece.content = [0, 1, 2, 255, 0]
        piece.trafficType = .backToSource
        piece.cost = Google_Protobuf_Duration(seconds: -3, nanos: -500)
        task.pieces = [piece, Common_V2_Piece()]
        task.createdAt = Google_Protobuf_Timestamp(seconds: 1_700_000_000, nanos: 999_999_999)

        var peer = Common_V2_Peer()
        peer.id = "peer-1"
        peer.range = Common_V2_Range()
        peer.priority = .level6
        peer.task = task
        peer.needBackToSource = true
        peer.concurrentPieceCount = 0
        return peer
    }

    @Test func nestedMessagesStringsBytesRepeatedAndMapsSurvive() throws {
        let peer = Self.samplePeer()
        let decoded = try Self.roundTrip(peer)
        #expect(decoded == peer)
        #expect(decoded.task?.requestHeader[""] == "empty key")
        #expect(decoded.task?.pieces.first?.content == [0, 1, 2, 255, 0])
        #expect(decoded.task?.filteredQueryParams == ["x", "", "y é ü 漢字"])
    }

    @Test func presenceDistinguishesUnsetFromDefault() throws {
        var peer = Common_V2_Peer()
        peer.concurrentPieceCount = 0
        peer.range = Common_V2_Range()
        let set = try Self.roundTrip(peer)
        #expect(set.concurrentPieceCount == 0)
        #expect(set.range == Common_V2_Range())

        let unset = try Self.roundTrip(Common_V2_Peer())
        #expect(unset.concurrentPieceCount == nil)
        #expect(unset.range == nil)
        #expect(unset.task == nil)

        var piece = Common_V2_Piece()
        piece.parentId = ""
        piece.content = []
        let decoded = try Self.roundTrip(piece)
        #expect(decoded.parentId == "")
        #expect(decoded.content == [])
        #expect(decoded.trafficType == nil)
    }

    @Test(arguments: [
        Scheduler_V2_AnnouncePeerRequest.RequestOneof.registerPeerRequest(Scheduler_V2_RegisterPeerRequest()),
        .downloadPeerStartedRequest(Scheduler_V2_DownloadPeerStartedRequest()),
        .downloadPieceFailedRequest(Scheduler_V2_DownloadPieceFailedRequest()),
    ])
    func oneofKeepsTheCaseEvenWhenTheValueIsEmpty(_ request: Scheduler_V2_AnnouncePeerRequest.RequestOneof) throws {
        var message = Scheduler_V2_AnnouncePeerRequest()
        message.hostId = "h"
        message.taskId = "t"
        message.peerId = "p"
        message.request = request
        #expect(try Self.roundTrip(message) == message)
    }

    @Test func oneofWithScalarAndStringMembers() throws {
        var request = Grpc_Reflection_V1_ServerReflectionRequest()
        request.host = "localhost"
        request.messageRequest = .listServices("")
        #expect(try Self.roundTrip(request) == request)
        request.messageRequest = .fileContainingSymbol("scheduler.v2.Scheduler")
        #expect(try Self.roundTrip(request) == request)
        request.messageRequest = nil
        #expect(try Self.roundTrip(request).messageRequest == nil)

        var response = Grpc_Reflection_V1_ServerReflectionResponse()
        var numbers = Grpc_Reflection_V1_ExtensionNumberResponse()
        numbers.baseTypeName = "x.Y"
        numbers.extensionNumber = [1, -1, Int32.max, Int32.min]
        response.messageResponse = .allExtensionNumbersResponse(numbers)
        var files = Grpc_Reflection_V1_FileDescriptorResponse()
        files.fileDescriptorProto = [[1, 2, 3], [], [0]]
        response.originalRequest = request
        #expect(try Self.roundTrip(response) == response)
        response.messageResponse = .fileDescriptorResponse(files)
        #expect(try Self.roundTrip(response) == response)
    }

    @Test func unknownEnumValuesSurvive() throws {
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = Grpc_Health_V1_HealthCheckResponse.ServingStatus(rawValue: 99)
        let decoded = try Self.roundTrip(response)
        #expect(decoded.status.rawValue == 99)
        #expect(decoded.status.description == "99")
        #expect(Grpc_Health_V1_HealthCheckResponse.ServingStatus.notServing.description == "NOT_SERVING")

        var negative = Grpc_Health_V1_HealthCheckResponse()
        negative.status = .init(rawValue: -5)
        #expect(try Self.roundTrip(negative).status.rawValue == -5)
    }

    @Test func mapWithMessageValues() throws {
        var serving = Grpc_Health_V1_HealthCheckResponse()
        serving.status = .serving
        var list = Grpc_Health_V1_HealthListResponse()
        list.statuses = ["": Grpc_Health_V1_HealthCheckResponse(), "scheduler.v2.Scheduler": serving]
        #expect(try Self.roundTrip(list) == list)
    }

    @Test func scalarExtremes() throws {
        var cpu = Common_V2_CPU()
        cpu.logicalCount = UInt32.max
        cpu.percent = -0.0
        cpu.processPercent = Double.greatestFiniteMagnitude
        var host = Common_V2_Host()
        host.port = Int32.min
        host.cpu = cpu
        let decoded = try Self.roundTrip(host)
        #expect(decoded == host)
    }

    @Test func proto2OptionalAndRequiredFields() throws {
        var field = Google_Protobuf_FieldDescriptorProto()
        field.name = "id"
        field.number = 1
        field.label = .optional
        field.type = .string
        field.proto3Optional = false
        var option = Google_Protobuf_UninterpretedOption()
        var part = Google_Protobuf_UninterpretedOption.NamePart()
        part.namePart = "custom"
        part.isExtension = false
        option.name = [part]
        option.doubleValue = 0
        var options = Google_Protobuf_FieldOptions()
        options.uninterpretedOption = [option]
        field.options = options
        let decoded = try Self.roundTrip(field)
        #expect(decoded == field)
        #expect(decoded.proto3Optional == false)
        #expect(decoded.typeName == nil)
        #expect(decoded.options?.uninterpretedOption.first?.doubleValue == 0)
        #expect(decoded.options?.uninterpretedOption.first?.positiveIntValue == nil)
    }

    @Test func wellKnownTypes() throws {
        #expect(try Self.roundTrip(Google_Protobuf_Empty()) == Google_Protobuf_Empty())
        #expect(Google_Protobuf_Empty().serializedBytes() == [])
        let stamp = Google_Protobuf_Timestamp(seconds: -62_135_596_800, nanos: 1)
        #expect(try Self.roundTrip(stamp) == stamp)
        let duration = Google_Protobuf_Duration(seconds: 315_576_000_000, nanos: 999_999_999)
        #expect(try Self.roundTrip(duration) == duration)
    }

    @Test func durationConvertsToAndFromSwift() {
        let duration = Google_Protobuf_Duration(.milliseconds(-1500))
        #expect(duration.seconds == -1 && duration.nanos == -500_000_000)
        #expect(duration.duration == .milliseconds(-1500))
        #expect(Google_Protobuf_Timestamp.now().seconds > 1_700_000_000)
    }

    @Test func defaultMessageEncodesToNothing() {
        #expect(Common_V2_Peer().serializedBytes() == [])
        #expect(Common_V2_Task().serializedBytes() == [])
    }

    @Test func mapEncodingIsDeterministic() {
        var task = Common_V2_Task()
        for i in 0..<50 { task.requestHeader["k\(i)"] = "v\(i)" }
        var copy = Common_V2_Task()
        for i in (0..<50).reversed() { copy.requestHeader["k\(i)"] = "v\(i)" }
        #expect(task.serializedBytes() == copy.serializedBytes())
    }
}
