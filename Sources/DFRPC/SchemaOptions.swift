import ArgumentParser
import GeneratedAPI
#if canImport(Glibc)
import Glibc
#endif

/// Schema from files instead of server reflection, as grpcurl's `-protoset`, `-proto` and
/// `-import-path`.
struct SchemaOptions: ParsableArguments {
    @Option(help: ArgumentHelp("""
        A FileDescriptorSet (protoc --include_imports --descriptor_set_out) to take types from \
        instead of server reflection (repeatable).
        """, valueName: "file"))
    var protoset: [String] = []
    @Option(help: ArgumentHelp("A .proto file to take types from instead of server reflection (repeatable; runs protoc).",
                               valueName: "file"))
    var proto: [String] = []
    @Option(name: [.customShort("I"), .customLong("import-path")],
            help: ArgumentHelp("Where --proto files and their imports are looked up (repeatable).", valueName: "dir"))
    var importPath: [String] = []

    var hasFiles: Bool { !protoset.isEmpty || !proto.isEmpty }

    func check() throws {
        if !protoset.isEmpty && !proto.isEmpty { throw usage("use either --protoset or --proto, not both") }
        if !importPath.isEmpty && proto.isEmpty { printError("warning: --import-path is only used with --proto\n") }
    }

    /// The files named on the command line, with everything they import; nil when none
    /// were named (types then come from reflection).
    func load() throws -> [Google_Protobuf_FileDescriptorProto]? {
        guard hasFiles else { return nil }
        var files: [Google_Protobuf_FileDescriptorProto] = []
        if proto.isEmpty {
            for path in protoset { files += try Self.descriptorSet(try readFile(path), from: path) }
        } else {
            files = try Self.descriptorSet(try Protoc.descriptorSet(protos: proto, importPaths: importPath), from: "protoc")
        }
        // A set written without --include_imports would fail later, at the first type it
        // lacks; say so now, with the way to fix it.
        let names = Set(files.compactMap(\.name))
        for file in files {
            for dependency in file.dependency where !names.contains(dependency) {
                throw SchemaFileError("\(file.name ?? "a file") imports \(dependency), which is not in the descriptor set "
                                      + "(write it with protoc --include_imports)")
            }
        }
        return files
    }

    private static func descriptorSet(_ bytes: [UInt8], from origin: String) throws -> [Google_Protobuf_FileDescriptorProto] {
        let set: Google_Protobuf_FileDescriptorSet
        do {
            set = try Google_Protobuf_FileDescriptorSet(serializedBytes: bytes)
        } catch {
            throw SchemaFileError("\(origin) is not a FileDescriptorSet: \(error)")
        }
        guard !set.file.isEmpty, set.file.allSatisfy({ $0.name?.isEmpty == false }) else {
            throw SchemaFileError("\(origin) is not a FileDescriptorSet (no named files in it)")
        }
        return set.file
    }
}

struct SchemaFileError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A whole file's bytes.
func readFile(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SchemaFileError("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n < 0 {
            if errno == EINTR { continue }
            throw SchemaFileError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        if n == 0 { return bytes }
        bytes += chunk[0..<n]
    }
}
