import GeneratedAPI

/// Where types come from: the server's reflection service, or descriptor files named on
/// the command line (`--protoset`, `--proto`), which also work for servers without
/// reflection. With files, the server is never asked.
struct DescriptorSource {
    private var reflection: ReflectionClient?
    private(set) var loader = SchemaLoader()

    struct NotFound: Error, CustomStringConvertible {
        var kind: String
        var name: String
        var description: String { "\(kind) not found: \(name)" }
    }

    static func reflection(_ client: ReflectionClient) -> DescriptorSource {
        var source = DescriptorSource()
        source.reflection = client
        return source
    }

    static func files(_ files: [Google_Protobuf_FileDescriptorProto]) -> DescriptorSource {
        var source = DescriptorSource()
        for file in files { source.loader.add(file) }
        return source
    }

    /// Every service, sorted.
    mutating func serviceNames() async throws -> [String] {
        guard var reflection else { return Array(Set(loader.index.serviceNames)).sorted() }
        defer { self.reflection = reflection }
        guard case .services(let names) = try await reflection.ask(.listServices) else { return [] }
        return names.sorted()
    }

    /// The definition of a fully-qualified name, fetched from the server when needed.
    mutating func resolve(_ symbol: String) async throws -> DescriptorIndex.Symbol {
        if let found = loader.index[symbol] { return found }
        if var reflection {
            defer { self.reflection = reflection }
            if try await reflection.load(symbol: symbol, into: &loader), let found = loader.index[symbol] {
                return found
            }
        }
        throw NotFound(kind: "symbol", name: symbol)
    }

    /// The service named `name`; anything else by that name is "service not found" too.
    mutating func service(_ name: String) async throws -> (DescriptorIndex.Service, DescriptorIndex.Scope) {
        let symbol: DescriptorIndex.Symbol
        do {
            symbol = try await resolve(name)
        } catch is NotFound {
            throw NotFound(kind: "service", name: name)
        }
        guard case .service(let s, let scope) = symbol else { throw NotFound(kind: "service", name: name) }
        return (s, scope)
    }
}
