// bench-grpcswift-server: grpc.testing.TestService {EmptyCall, UnaryCall, StreamingOutputCall}
// on grpc-swift-2 with the HTTP/2 NIO Posix transport (plaintext, default configuration),
// with the same semantics as our interop-server for these three methods.
//
//   bench-grpcswift-server [--host 127.0.0.1] [--port N]   (prints "LISTENING <port>")
import BenchCodec
import GRPCCore
import GRPCNIOTransportHTTP2Posix

#if canImport(Glibc)
import Glibc
#endif

struct BenchTestService: RegistrableRPCService {
    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(
            forMethod: TestServiceMethods.emptyCall,
            deserializer: BytesDeserializer(), serializer: BytesSerializer()
        ) { request, _ in
            _ = try await ServerRequest(stream: request)
            return StreamingServerResponse(single: ServerResponse(message: []))
        }

        router.registerHandler(
            forMethod: TestServiceMethods.unaryCall,
            deserializer: BytesDeserializer(), serializer: BytesSerializer()
        ) { request, _ in
            let single = try await ServerRequest(stream: request)
            let size = try Self.checked(try TestMessages.responseSize(ofSimpleRequest: single.message))
            return StreamingServerResponse(single: ServerResponse(message: TestMessages.payloadResponse(size: size)))
        }

        router.registerHandler(
            forMethod: TestServiceMethods.streamingOutputCall,
            deserializer: BytesDeserializer(), serializer: BytesSerializer()
        ) { request, _ in
            let single = try await ServerRequest(stream: request)
            let sizes = try TestMessages.responseSizes(ofStreamingOutputCallRequest: single.message)
            return StreamingServerResponse { writer in
                for size in sizes {
                    try await writer.write(TestMessages.payloadResponse(size: try Self.checked(size)))
                }
                return [:]
            }
        }
    }

    static func checked(_ size: Int32) throws -> Int {
        guard size >= 0 else { throw RPCError(code: .invalidArgument, message: "negative payload size \(size)") }
        return Int(size)
    }
}

var host = "127.0.0.1"
var port = 0
var args = CommandLine.arguments.dropFirst().makeIterator()
while let arg = args.next() {
    switch arg {
    case "--port": port = Int(args.next() ?? "") ?? -1
    case "--host": host = args.next() ?? host
    default:
        eprint("usage: bench-grpcswift-server [--host H] [--port N]")
        exit(2)
    }
}
guard (0 ... 65535).contains(port) else { fatalError("bad --port") }

let transport = HTTP2ServerTransport.Posix(
    address: .ipv4(host: host, port: port),
    transportSecurity: .plaintext)
let server = GRPCServer(transport: transport, services: [BenchTestService()])

try await withThrowingDiscardingTaskGroup { group in
    group.addTask { try await server.serve() }
    let address = try await transport.listeningAddress
    guard let ipv4 = address.ipv4 else { fatalError("unexpected listening address \(address)") }
    print("LISTENING \(ipv4.port)")
    fflush(nil)
}
