import GeneratedAPI
import RPCCore

/// `grpc.testing.TestService` as the gRPC interop suite specifies the server.
struct TestService: Grpc_Testing_TestServiceProvider {
    static func payload(_ size: Int32) throws -> Grpc_Testing_Payload {
        guard size >= 0 else { throw RPCError(code: .invalidArgument, message: "negative payload size \(size)") }
        var p = Grpc_Testing_Payload()
        p.body = [UInt8](repeating: 0, count: Int(size))
        return p
    }

    /// Echoes `x-grpc-test-echo-initial` and `x-grpc-test-echo-trailing-bin`, as custom_metadata expects.
    static func echoMetadata(_ context: RPCServerContext) {
        if let v = context.requestMetadata["x-grpc-test-echo-initial"] {
            context.addInitialMetadata("x-grpc-test-echo-initial", .string(v))
        }
        if let b = context.requestMetadata.binary("x-grpc-test-echo-trailing-bin") {
            context.addTrailingMetadata("x-grpc-test-echo-trailing-bin", .binary(b))
        }
    }

    static func check(_ status: Grpc_Testing_EchoStatus?) throws {
        guard let status, status.code != 0 else { return }
        throw RPCError(code: StatusCode(rawValue: Int(status.code)), message: status.message)
    }

    func emptyCall(_ request: Grpc_Testing_Empty, context: RPCServerContext) async throws -> Grpc_Testing_Empty {
        Self.echoMetadata(context)
        return Grpc_Testing_Empty()
    }

    func unaryCall(_ request: Grpc_Testing_SimpleRequest, context: RPCServerContext) async throws -> Grpc_Testing_SimpleResponse {
        Self.echoMetadata(context)
        try Self.check(request.responseStatus)
        var response = Grpc_Testing_SimpleResponse()
        response.payload = try Self.payload(request.responseSize)
        return response
    }

    func cacheableUnaryCall(_ request: Grpc_Testing_SimpleRequest, context: RPCServerContext) async throws -> Grpc_Testing_SimpleResponse {
        try await unaryCall(request, context: context)
    }

    func streamingOutputCall(_ request: Grpc_Testing_StreamingOutputCallRequest,
                             responses: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>,
                             context: RPCServerContext) async throws {
        Self.echoMetadata(context)
        try await respond(to: request, responses)
        try Self.check(request.responseStatus)
    }

    func streamingInputCall(_ requests: RPCStream<Grpc_Testing_StreamingInputCallRequest>,
                            context: RPCServerContext) async throws -> Grpc_Testing_StreamingInputCallResponse {
        var total: Int32 = 0
        for try await request in requests { total += Int32(request.payload?.body.count ?? 0) }
        var response = Grpc_Testing_StreamingInputCallResponse()
        response.aggregatedPayloadSize = total
        return response
    }

    func fullDuplexCall(_ requests: RPCStream<Grpc_Testing_StreamingOutputCallRequest>,
                        responses: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>,
                        context: RPCServerContext) async throws {
        Self.echoMetadata(context)
        for try await request in requests {
            try Self.check(request.responseStatus)
            try await respond(to: request, responses)
        }
    }

    func halfDuplexCall(_ requests: RPCStream<Grpc_Testing_StreamingOutputCallRequest>,
                        responses: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>,
                        context: RPCServerContext) async throws {
        var all: [Grpc_Testing_StreamingOutputCallRequest] = []
        for try await request in requests { all.append(request) }
        for request in all { try await respond(to: request, responses) }
    }

    private func respond(to request: Grpc_Testing_StreamingOutputCallRequest,
                         _ responses: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>) async throws {
        for parameters in request.responseParameters {
            if parameters.intervalUs > 0 { try await Task.sleep(for: .microseconds(Int64(parameters.intervalUs))) }
            var response = Grpc_Testing_StreamingOutputCallResponse()
            response.payload = try Self.payload(parameters.size)
            try await responses.write(response)
        }
    }
}
