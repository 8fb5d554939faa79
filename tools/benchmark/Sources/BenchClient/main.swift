// bench-client: the grpc-swift-2 client side of the benchmark (same client for both servers).
//
//   bench-client check  --port N                          calls EmptyCall, UnaryCall and a short
//                                                         StreamingOutputCall; verifies status and sizes
//   bench-client stream --port N --count C --size S       one StreamingOutputCall of C messages of S
//                                                         bytes; prints "STREAM bytes=.. seconds=.. MBps=.."
//   bench-client body unary SIZE FILE | body stream COUNT SIZE FILE | body empty FILE
//                                                         writes a gRPC-framed request for h2load -d
import BenchCodec
import GRPCCore
import GRPCNIOTransportHTTP2Posix

#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String) -> Never {
    fflush(nil)
    eprint("bench-client: \(message)")
    exit(1)
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    guard let f = fopen(path, "wb") else { fail("cannot open \(path)") }
    let n = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
    if n != bytes.count { fail("short write to \(path)") }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

var argv = Array(CommandLine.arguments.dropFirst())
guard let mode = argv.first else { fail("usage: bench-client check|stream|body ...") }
argv.removeFirst()

if mode == "body" {
    guard let kind = argv.first else { fail("body: unary|stream|empty") }
    switch (kind, argv.count) {
    case ("unary", 3):
        writeFile(argv[2], TestMessages.grpcFrame(TestMessages.simpleRequest(responseSize: Int(argv[1])!)))
    case ("stream", 4):
        writeFile(argv[3], TestMessages.grpcFrame(TestMessages.streamingOutputCallRequest(count: Int(argv[1])!, size: Int(argv[2])!)))
    case ("empty", 2):
        writeFile(argv[1], TestMessages.grpcFrame([]))
    default: fail("body: bad arguments")
    }
    exit(0)
}

var port = -1, count = 512, size = 1 << 20, host = "127.0.0.1"
var it = argv.makeIterator()
while let a = it.next() {
    switch a {
    case "--port": port = Int(it.next() ?? "") ?? -1
    case "--host": host = it.next() ?? host
    case "--count": count = Int(it.next() ?? "") ?? -1
    case "--size": size = Int(it.next() ?? "") ?? -1
    default: fail("unknown argument \(a)")
    }
}
guard port > 0, count >= 0, size >= 0 else { fail("bad --port/--count/--size") }

var options = CallOptions.defaults
options.maxResponseMessageBytes = 64 << 20
options.timeout = .seconds(120)

/// One StreamingOutputCall; returns (messages, body bytes, seconds).
func streamingCall(_ client: GRPCClient<HTTP2ClientTransport.Posix>, count: Int, size: Int) async throws -> (Int, Int, Double) {
    let request = ClientRequest(message: TestMessages.streamingOutputCallRequest(count: count, size: size))
    let start = now()
    let (messages, bytes) = try await client.serverStreaming(
        request: request, descriptor: TestServiceMethods.streamingOutputCall,
        serializer: BytesSerializer(), deserializer: BytesDeserializer(), options: options
    ) { response in
        var messages = 0, bytes = 0
        for try await message in response.messages {
            let n = try TestMessages.bodyLength(ofPayloadResponse: message)
            if n != size { throw WireError("message \(messages): body \(n) bytes, expected \(size)") }
            messages += 1; bytes += n
        }
        return (messages, bytes)
    }
    let seconds = now() - start
    if messages != count { throw WireError("got \(messages) messages, expected \(count)") }
    return (messages, bytes, seconds)
}

let transport = try HTTP2ClientTransport.Posix(
    target: .ipv4(address: host, port: port), transportSecurity: .plaintext)

do {
    try await withGRPCClient(transport: transport) { client in
        switch mode {
        case "check":
            let empty = try await client.unary(
                request: ClientRequest(message: [UInt8]()), descriptor: TestServiceMethods.emptyCall,
                serializer: BytesSerializer(), deserializer: BytesDeserializer(), options: options
            ) { try $0.message }
            if !empty.isEmpty { throw WireError("EmptyCall returned \(empty.count) bytes") }
            for n in [0, 64, 4096] {
                let reply = try await client.unary(
                    request: ClientRequest(message: TestMessages.simpleRequest(responseSize: n)),
                    descriptor: TestServiceMethods.unaryCall,
                    serializer: BytesSerializer(), deserializer: BytesDeserializer(), options: options
                ) { try $0.message }
                let got = try TestMessages.bodyLength(ofPayloadResponse: reply)
                if got != n { throw WireError("UnaryCall(\(n)) returned a \(got)-byte body") }
            }
            _ = try await streamingCall(client, count: 3, size: 1 << 20)
            print("OK")
        case "stream":
            let (messages, bytes, seconds) = try await streamingCall(client, count: count, size: size)
            print("STREAM messages=\(messages) bytes=\(bytes) seconds=\(seconds) MBps=\(Double(bytes) / seconds / 1e6)")
        default:
            fail("unknown mode \(mode)")
        }
    }
} catch {
    fail("\(mode) failed: \(error)")
}
