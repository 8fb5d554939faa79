import GeneratedAPI
import ProtoCore
import RPCCore

/// Asks a server about itself over server reflection: v1 first, v1alpha when the server
/// only has the older service.
struct ReflectionClient {
    let rpc: RPCClient
    /// Each request's deadline and metadata (the user's -H headers: a server may want them
    /// for reflection as much as for the call).
    let options: @Sendable () -> CallOptions
    private var useAlpha = false

    init(rpc: RPCClient, options: @escaping @Sendable () -> CallOptions = { CallOptions() }) {
        self.rpc = rpc
        self.options = options
    }

    enum Request {
        case listServices
        case fileContainingSymbol(String)
        case fileByFilename(String)
    }

    enum Answer {
        case services([String])
        case files([[UInt8]])
    }

    mutating func ask(_ request: Request) async throws -> Answer {
        if !useAlpha {
            do {
                return try await ask(request, service: "grpc.reflection.v1.ServerReflection")
            } catch let error as RPCError where error.code == .unimplemented {
                useAlpha = true
            }
        }
        return try await ask(request, service: "grpc.reflection.v1alpha.ServerReflection")
    }

    /// v1alpha's messages are v1's on the wire, so the v1 types serve for both paths.
    private func ask(_ request: Request, service: String) async throws -> Answer {
        var r = Grpc_Reflection_V1_ServerReflectionRequest()
        switch request {
        case .listServices: r.messageRequest = .listServices("*")
        case .fileContainingSymbol(let s): r.messageRequest = .fileContainingSymbol(s)
        case .fileByFilename(let f): r.messageRequest = .fileByFilename(f)
        }
        let call: RPCCall<Grpc_Reflection_V1_ServerReflectionRequest, Grpc_Reflection_V1_ServerReflectionResponse> =
            try await rpc.makeCall(path: "/\(service)/ServerReflectionInfo", options: options())
        try await call.send(r)
        let response = try await call.response()
        switch response.messageResponse {
        case .listServicesResponse(let l)?: return .services(l.service.map(\.name))
        case .fileDescriptorResponse(let f)?: return .files(f.fileDescriptorProto)
        case .errorResponse(let e)?:
            throw RPCError(code: StatusCode(rawValue: Int(e.errorCode)), message: e.errorMessage)
        default: throw RPCError(code: .internal, message: "unexpected reflection response")
        }
    }

    /// Loads the file defining `symbol` and, transitively, every file it imports. A server
    /// that only knows top-level names is asked for the enclosing ones (a method's service,
    /// a field's message). Returns false when no enclosing name is known either.
    mutating func load(symbol: String, into loader: inout SchemaLoader) async throws -> Bool {
        var name = symbol
        var answer: Answer?
        while answer == nil {
            do {
                answer = try await ask(.fileContainingSymbol(name))
            } catch let error as RPCError where error.code == .notFound {
                guard let dot = name.lastIndex(of: ".") else { return false }
                name = String(name[..<dot])
            } catch var error as RPCError where error.code != .unavailable && error.code != .deadlineExceeded {
                // A server that cannot be reached is not a symbol problem: leave that message alone.
                error.message = "cannot resolve symbol \(symbol): \(error.message)"
                throw error
            }
        }
        guard case .files(let files)? = answer else { return false }
        var pending: [String] = []
        for bytes in files {
            let file = try Google_Protobuf_FileDescriptorProto(serializedBytes: bytes)
            loader.add(file)
            pending += file.dependency
        }
        while let name = pending.popLast() {
            guard !loader.loadedFiles.contains(name) else { continue }
            guard case .files(let more) = try await ask(.fileByFilename(name)) else { continue }
            for bytes in more {
                let file = try Google_Protobuf_FileDescriptorProto(serializedBytes: bytes)
                loader.add(file)
                pending += file.dependency
            }
        }
        return true
    }
}
