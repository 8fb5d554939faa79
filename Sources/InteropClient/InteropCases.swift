import Foundation
import GeneratedAPI
import RPCCore

/// A failed expectation in an interop case.
struct InteropFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func expect(_ condition: Bool, _ what: @autoclosure () -> String) throws {
    if !condition { throw InteropFailure(what()) }
}

/// The standard interop client cases (grpc's doc/interop-test-descriptions.md).
struct InteropCases {
    let client: Grpc_Testing_TestServiceClient
    let unimplemented: Grpc_Testing_UnimplementedServiceClient
    /// For calls whose metadata a generated unary method does not expose.
    let rpc: RPCClient
    /// Peak resident memory allowed for `stream_1gib`.
    var maxRSSMiB = 300

    static let names = [
        "empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong", "empty_stream",
        "custom_metadata", "status_code_and_message", "special_status_message", "unimplemented_method",
        "unimplemented_service", "cancel_after_begin", "cancel_after_first_response", "timeout_on_sleeping_server",
    ]

    func run(_ name: String) async throws {
        switch name {
        case "empty_unary": try await emptyUnary()
        case "large_unary": try await largeUnary()
        case "client_streaming": try await clientStreaming()
        case "server_streaming": try await serverStreaming()
        case "ping_pong": try await pingPong()
        case "empty_stream": try await emptyStream()
        case "custom_metadata": try await customMetadata()
        case "status_code_and_message": try await statusCodeAndMessage("test status message")
        case "special_status_message":
            try await statusCodeAndMessage("\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n", unaryOnly: true)
        case "unimplemented_method": try await expectUnimplemented { _ = try await client.unimplementedCall(Grpc_Testing_Empty()) }
        case "unimplemented_service": try await expectUnimplemented { _ = try await unimplemented.unimplementedCall(Grpc_Testing_Empty()) }
        case "cancel_after_begin": try await cancelAfterBegin()
        case "cancel_after_first_response": try await cancelAfterFirstResponse()
        case "timeout_on_sleeping_server": try await timeoutOnSleepingServer()
        case "stream_1gib": try await streamOneGiB()
        default: throw InteropFailure("unknown test case \(name)")
        }
    }

    static func payload(_ size: Int) -> Grpc_Testing_Payload {
        var p = Grpc_Testing_Payload()
        p.body = [UInt8](repeating: 0, count: size)
        return p
    }

    static func streamingRequest(response sizes: [Int32], payload: Int? = nil) -> Grpc_Testing_StreamingOutputCallRequest {
        var r = Grpc_Testing_StreamingOutputCallRequest()
        r.responseParameters = sizes.map { var p = Grpc_Testing_ResponseParameters(); p.size = $0; return p }
        if let payload { r.payload = Self.payload(payload) }
        return r
    }

    static func largeRequest() -> Grpc_Testing_SimpleRequest {
        var r = Grpc_Testing_SimpleRequest()
        r.responseSize = 314_159
        r.payload = payload(271_828)
        return r
    }

    /// Not part of the standard suite: reads 1 GiB (1024 x 1 MiB) and checks that our
    /// client's memory stays bounded while doing so.
    func streamOneGiB() async throws {
        var request = Grpc_Testing_StreamingOutputCallRequest()
        request.responseParameters = (0..<1024).map { _ in var p = Grpc_Testing_ResponseParameters(); p.size = 1 << 20; return p }
        let call = try await client.streamingOutputCall(request, options: CallOptions(timeout: .seconds(300)))
        var total = 0
        for try await r in call.responses { total += r.payload?.body.count ?? 0 }
        try expect(total == 1 << 30, "received \(total) bytes, want 1 GiB")
        let peak = PeakMemory.residentMiB()
        print("client peak RSS after 1 GiB: \(peak) MiB")
        try expect(peak < maxRSSMiB, "peak RSS \(peak) MiB over the \(maxRSSMiB) MiB limit")
    }

    func emptyUnary() async throws {
        let response = try await client.emptyCall(Grpc_Testing_Empty())
        try expect(response == Grpc_Testing_Empty(), "EmptyCall returned a non-empty message")
    }

    func largeUnary() async throws {
        let response = try await client.unaryCall(Self.largeRequest())
        let body = response.payload?.body ?? []
        try expect(body.count == 314_159, "payload size \(body.count), want 314159")
        try expect(body.allSatisfy { $0 == 0 }, "payload is not all zeros")
    }

    func clientStreaming() async throws {
        let call = try await client.streamingInputCall()
        for size in [27_182, 8, 1_828, 45_904] {
            var r = Grpc_Testing_StreamingInputCallRequest()
            r.payload = Self.payload(size)
            try await call.send(r)
        }
        let response = try await call.response()
        try expect(response.aggregatedPayloadSize == 74_922, "aggregated size \(response.aggregatedPayloadSize), want 74922")
    }

    func serverStreaming() async throws {
        let sizes: [Int32] = [31_415, 9, 2_653, 58_979]
        let call = try await client.streamingOutputCall(Self.streamingRequest(response: sizes))
        var got: [Int] = []
        for try await r in call.responses { got.append(r.payload?.body.count ?? 0) }
        try expect(got == sizes.map(Int.init), "response sizes \(got), want \(sizes)")
    }

    func pingPong() async throws {
        let call = try await client.fullDuplexCall()
        var responses = call.responses.makeAsyncIterator()
        for (request, response) in zip([27_182, 8, 1_828, 45_904], [31_415, 9, 2_653, 58_979] as [Int32]) {
            try await call.send(Self.streamingRequest(response: [response], payload: request))
            guard let r = try await responses.next() else { throw InteropFailure("stream ended early") }
            try expect(r.payload?.body.count == Int(response), "response size \(r.payload?.body.count ?? -1), want \(response)")
        }
        try await call.finishSending()
        try expect(try await responses.next() == nil, "unexpected extra response")
        let (status, _) = await call.finalStatus()
        try expect(status.code == .ok, "status \(status.code), want OK")
    }

    func emptyStream() async throws {
        let call = try await client.fullDuplexCall()
        try await call.finishSending()
        var n = 0
        for try await _ in call.responses { n += 1 }
        try expect(n == 0, "\(n) responses to an empty stream")
    }

    func customMetadata() async throws {
        let trailing: [UInt8] = [0xab, 0xab, 0xab]
        var options = CallOptions()
        options.metadata.add("x-grpc-test-echo-initial", "test_initial_metadata_value")
        options.metadata.add("x-grpc-test-echo-trailing-bin", binary: trailing)

        let unary: RPCCall<Grpc_Testing_SimpleRequest, Grpc_Testing_SimpleResponse> =
            try await rpc.makeCall(path: "/grpc.testing.TestService/UnaryCall", options: options)
        try await unary.send(Self.largeRequest())
        _ = try await unary.response()
        try await checkEchoed(unary.handle, trailing)

        let duplex = try await client.fullDuplexCall(options: options)
        try await duplex.send(Self.streamingRequest(response: [314_159], payload: 271_828))
        try await duplex.finishSending()
        for try await _ in duplex.responses {}
        try await checkEchoed(duplex.handle, trailing)
    }

    private func checkEchoed(_ handle: any RPCClientStreamHandle, _ trailing: [UInt8]) async throws {
        let initial = try await handle.initialMetadata()
        try expect(initial["x-grpc-test-echo-initial"] == "test_initial_metadata_value",
                   "initial metadata \(initial["x-grpc-test-echo-initial"] ?? "missing")")
        let (_, trailers) = await handle.finalStatus()
        try expect(trailers.binary("x-grpc-test-echo-trailing-bin") == trailing, "trailing metadata not echoed")
    }

    func statusCodeAndMessage(_ message: String, unaryOnly: Bool = false) async throws {
        var status = Grpc_Testing_EchoStatus()
        status.code = 2
        status.message = message
        var request = Grpc_Testing_SimpleRequest()
        request.responseStatus = status
        try await expectStatus(.unknown, message) { _ = try await client.unaryCall(request) }
        if unaryOnly { return }
        var streaming = Grpc_Testing_StreamingOutputCallRequest()
        streaming.responseStatus = status
        try await expectStatus(.unknown, message) {
            let call = try await client.fullDuplexCall()
            try await call.send(streaming)
            try await call.finishSending()
            for try await _ in call.responses {}
        }
    }

    func expectUnimplemented(_ body: () async throws -> Void) async throws {
        try await expectStatus(.unimplemented, nil, body)
    }

    func cancelAfterBegin() async throws {
        let call = try await client.streamingInputCall()
        call.cancel()
        try await expectStatus(.cancelled, nil) { _ = try await call.response() }
    }

    func cancelAfterFirstResponse() async throws {
        let call = try await client.fullDuplexCall()
        try await call.send(Self.streamingRequest(response: [31_415], payload: 27_182))
        var responses = call.responses.makeAsyncIterator()
        try expect(try await responses.next() != nil, "no first response")
        call.cancel()
        try await expectStatus(.cancelled, nil) { while try await responses.next() != nil {} }
    }

    func timeoutOnSleepingServer() async throws {
        let call = try await client.fullDuplexCall(options: CallOptions(timeout: .milliseconds(1)))
        try await expectStatus(.deadlineExceeded, nil) {
            // The send may already fail with the deadline; either way the status must say so.
            try? await call.send(Self.streamingRequest(response: [], payload: 27_182))
            for try await _ in call.responses {}
        }
    }

    func expectStatus(_ code: StatusCode, _ message: String?, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as RPCError {
            try expect(error.code == code, "status \(error.code) (\(error.message)), want \(code)")
            if let message { try expect(error.message == message, "message \(error.message.debugDescription), want \(message.debugDescription)") }
            return
        }
        throw InteropFailure("call succeeded, want \(code)")
    }
}

/// Peak resident set size of this process, from /proc (Linux).
enum PeakMemory {
    static func residentMiB() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let digits = line.filter(\.isNumber)
            return (Int(digits) ?? 0) / 1024
        }
        return -1
    }
}
