import ArgumentParser
import ProtoJSON
import RPCCore
import RPCTransport
#if canImport(Glibc)
import Glibc
#endif

struct Call: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call a method with JSON requests; print JSON responses.",
        discussion: "-d takes one JSON object, or '@' to read whitespace-separated JSON objects from stdin (for streaming).")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "pkg.Service/Method (or pkg.Service.Method).")
    var method: String
    @Option(name: .shortAndLong, help: "Request JSON, or @ for stdin.")
    var data: String = "{}"
    @Option(name: .customShort("H"), help: "Request metadata 'key: value' (repeatable).")
    var header: [String] = []

    func run() async throws {
        guard let (serviceName, methodName) = Self.split(method) else {
            printError("ERROR: method must look like pkg.Service/Method, got \(method)\n")
            throw ExitCode(2)
        }
        let (rpc, channel) = try connection.client()
        defer { Task { await channel.close() } }
        var reflection = ReflectionClient(rpc: rpc)
        var loader = SchemaLoader()
        do {
            try await reflection.load(symbol: serviceName, into: &loader)
        } catch {
            throw fail(error)
        }
        let pool = loader.pool
        guard let service = pool.services[serviceName] else {
            printError("ERROR: service not found: \(serviceName)\n")
            throw ExitCode(1)
        }
        guard let info = service.methods.first(where: { $0.name == methodName }) else {
            printError("ERROR: service \(serviceName) has no method \(methodName)\n")
            throw ExitCode(1)
        }
        let requests: [[UInt8]]
        do {
            let text = data == "@" ? Self.readStdin() : data
            let values = try JSONParser.parseAll(text)
            requests = try values.map { try DynamicEncoder(pool: pool).encode($0, as: info.inputType) }
        } catch {
            printError("ERROR: bad request data: \(error)\n")
            throw ExitCode(2)
        }
        var options = connection.callOptions
        for h in header {
            guard let colon = h.firstIndex(of: ":") else { continue }
            options.metadata.add(String(h[..<colon]).trimmed, String(h[h.index(after: colon)...]).trimmed)
        }
        do {
            let handle = try await rpc.transport.openStream(path: "/\(serviceName)/\(methodName)", options: options)
            for r in requests { try await handle.send(r) }
            try await handle.finishSending()
            let decoder = DynamicDecoder(pool: pool)
            for try await bytes in handle.responses {
                print(try decoder.decode(bytes, as: info.outputType).rendered())
            }
        } catch {
            throw fail(error)
        }
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
