/// One `.proto` file as server reflection serves it.
public struct ProtoFile: Sendable {
    /// The import path, e.g. `dragonfly/common/v2/common.proto`.
    public let name: String
    public let dependencies: [String]
    /// Fully qualified services, methods (`pkg.Service.Method`), messages (nested too) and enums.
    public let symbols: [String]
    public let services: [String]
    /// A serialized `google.protobuf.FileDescriptorProto`, without source code info.
    public let serializedDescriptor: [UInt8]
}

/// The descriptors of every file the generated API was built from, looked up the ways
/// server reflection asks for them.
public struct ProtoFileTable: Sendable {
    /// Generated data for one file; the descriptor is base64 because a large byte array
    /// literal takes the Swift type checker far longer than a string.
    public struct Entry: Sendable {
        let name: String
        let dependencies: [String]
        let symbols: [String]
        let services: [String]
        let descriptorBase64: String

        public init(name: String, dependencies: [String], symbols: [String], services: [String], descriptorBase64: String) {
            self.name = name
            self.dependencies = dependencies
            self.symbols = symbols
            self.services = services
            self.descriptorBase64 = descriptorBase64
        }
    }

    public let files: [ProtoFile]
    private let byName: [String: Int]
    private let bySymbol: [String: Int]

    public init(_ entries: [Entry]) {
        var files: [ProtoFile] = []
        var byName: [String: Int] = [:]
        var bySymbol: [String: Int] = [:]
        for entry in entries {
            // The literal is wrapped for readable diffs; the decoder wants one run.
            let joined = entry.descriptorBase64.split(whereSeparator: \.isWhitespace).joined()
            guard let bytes = Base64.decode(joined) else {
                preconditionFailure("generated descriptor of \(entry.name) is not base64: regenerate with tools/generate.sh")
            }
            byName[entry.name] = files.count
            for symbol in entry.symbols { bySymbol[symbol] = files.count }
            files.append(ProtoFile(name: entry.name, dependencies: entry.dependencies, symbols: entry.symbols,
                                   services: entry.services, serializedDescriptor: bytes))
        }
        self.files = files
        self.byName = byName
        self.bySymbol = bySymbol
    }

    public func file(named name: String) -> ProtoFile? {
        byName[name].map { files[$0] }
    }

    /// The file defining `symbol` (a service, method, message or enum); a leading dot is ignored.
    public func file(containingSymbol symbol: String) -> ProtoFile? {
        let key = symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol
        return bySymbol[key].map { files[$0] }
    }

    /// Every service, fully qualified, in file order.
    public var serviceNames: [String] { files.flatMap(\.services) }

    /// `file` and everything it imports, transitively, each once, the file itself first:
    /// what a reflection client needs to build the file's descriptor pool.
    public func withDependencies(_ file: ProtoFile) -> [ProtoFile] {
        var result: [ProtoFile] = []
        var seen: Set<String> = []
        var pending: [ProtoFile] = [file]
        while let next = pending.popLast() {
            guard seen.insert(next.name).inserted else { continue }
            result.append(next)
            for dependency in next.dependencies.reversed() {
                if let found = self.file(named: dependency) { pending.append(found) }
            }
        }
        return result
    }
}
