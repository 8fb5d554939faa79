import ArgumentParser
import ProtoJSON
import RPCCore
#if canImport(Glibc)
import Glibc
#endif

struct Call: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call a method with JSON requests; print JSON responses.",
        discussion: """
        -d takes one JSON object, or '@' to read whitespace-separated JSON objects from stdin \
        (for streaming). -v also prints the response headers and trailers, as grpcurl -v does.
        """)
    @Argument(help: "Server address: host:port or unix:PATH.")
    var address: String
    @Argument(help: "pkg.Service/Method (or pkg.Service.Method).")
    var method: String
    @Option(name: .shortAndLong, help: "Request JSON, or @ for stdin.")
    var data: String = "{}"
    @Option(name: .customShort("H"), help: "Request metadata 'key: value' (repeatable; also sent with reflection requests).")
    var header: [String] = []
    @Flag(name: .shortAndLong, help: "Print the resolved method, request metadata, response headers and trailers.")
    var verbose = false
    @Flag(name: .customLong("emit-defaults"), help: "Print fields that hold default values too (unset messages as null).")
    var emitDefaults = false
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var schema: SchemaOptions

    func run() async throws {
        guard let (serviceName, methodName) = Self.split(method) else {
            throw usage("method must look like pkg.Service/Method, got \(method)")
        }
        var metadata = Metadata()
        for h in header {
            // As grpcurl: a header without a colon has an empty value; names go lowercase, as HTTP/2 requires.
            let colon = h.firstIndex(of: ":") ?? h.endIndex
            let value = colon == h.endIndex ? "" : String(h[h.index(after: colon)...]).trimmed
            metadata.add(String(h[..<colon]).trimmed.lowercased(), value)
        }
        var session = try Session.open(address: address, connection: connection, schema: schema, metadata: metadata)
        defer { Task { [session] in await session.close() } }
        guard let rpc = session.rpc else { throw fail(SchemaFileError("no server to call")) }

        let service: DescriptorIndex.Service
        do {
            (service, _) = try await session.source.service(serviceName)
        } catch {
            throw fail(error)
        }
        let pool = session.source.loader.pool
        guard let descriptor = service.method.first(where: { $0.name == methodName }),
              let info = pool.services[serviceName]?.methods.first(where: { $0.name == methodName }) else {
            printError("ERROR: service \(serviceName) has no method \(methodName)\n")
            throw ExitCode(1)
        }
        let requests: [[UInt8]]
        do {
            let text = data == "@" ? Self.readStdin() : data
            let values = try JSONParser.parseAll(text)
            requests = try values.map { try DynamicEncoder(pool: pool).encode($0, as: info.inputType) }
        } catch {
            throw usage("bad request data: \(error)")
        }

        let output = CallOutput(verbose: verbose, decoder: DynamicDecoder(pool: pool, emitDefaults: emitDefaults),
                                outputType: info.outputType)
        output.start(method: descriptor, index: session.source.loader.index, metadata: metadata)
        let options = session.deadline.callOptions(metadata: metadata)
        var failure: (any Error)?
        var handle: (any RPCClientStreamHandle)?
        do {
            let stream = try await rpc.transport.openStream(path: "/\(serviceName)/\(methodName)", options: options)
            handle = stream
            for r in requests { try await stream.send(r) }
            try await stream.finishSending()
            if verbose, let headers = try? await stream.initialMetadata() { output.headers(headers) }
            for try await bytes in stream.responses { try output.response(bytes) }
        } catch {
            failure = error
        }
        if verbose, let handle {
            output.trailers(await handle.finalStatus().1)
        }
        output.finish(requests: requests.count)
        if let failure { throw fail(failure) }
    }

    static func split(_ method: String) -> (String, String)? {
        let m = method.hasPrefix("/") ? String(method.dropFirst()) : method
        guard let sep = m.lastIndex(of: "/") ?? m.lastIndex(of: ".") else { return nil }
        let service = String(m[..<sep]), name = String(m[m.index(after: sep)...])
        return service.isEmpty || name.isEmpty ? nil : (service, name)
    }

    static func readStdin() -> String {
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(0, &buf, buf.count)
            if n <= 0 { break }
            bytes += buf[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension String {
    var trimmed: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
