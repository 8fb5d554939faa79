#if canImport(Glibc)
import Glibc
#endif

/// Compiles .proto files with the `protoc` on PATH into a FileDescriptorSet: protoc is the
/// reference parser, and writing our own would only add a second opinion on the grammar.
enum Protoc {
    static func descriptorSet(protos: [String], importPaths: [String]) throws -> [UInt8] {
        let directory = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(directory)/dfrpc-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw SchemaFileError("cannot create a temporary file in \(directory)") }
        close(fd)
        let output = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(output) }

        var arguments = ["protoc", "--include_imports", "--descriptor_set_out=\(output)"]
        for path in importPaths { arguments += ["-I", path] }
        arguments += protos
        let status = try run(arguments)
        guard status == 0 else {
            // protoc has written its own diagnostics to our stderr.
            throw SchemaFileError("protoc failed (exit status \(status)) compiling \(protos.joined(separator: " "))")
        }
        return try readFile(output)
    }

    /// Runs a program found on PATH with our stdin, stdout and stderr; its exit status
    /// (128 + the signal when a signal ended it).
    private static func run(_ arguments: [String]) throws -> Int32 {
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, arguments[0], nil, nil, argv, environ)
        if rc == ENOENT {
            throw SchemaFileError("""
                protoc is not on PATH: --proto needs it (install protobuf-compiler, e.g. apt-get install \
                protobuf-compiler), or pass a descriptor set made elsewhere with --protoset
                """)
        }
        guard rc == 0 else { throw SchemaFileError("cannot run protoc: \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw SchemaFileError("waiting for protoc: \(String(cString: strerror(errno)))") }
        }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}
