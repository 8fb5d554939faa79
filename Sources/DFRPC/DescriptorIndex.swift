import GeneratedAPI

/// The descriptors behind a schema, by fully-qualified name (no leading dot), so describe
/// can print what the JSON schema leaves out: nested types, options, reserved ranges.
struct DescriptorIndex {
    typealias Message = Google_Protobuf_DescriptorProto
    typealias Field = Google_Protobuf_FieldDescriptorProto
    typealias Enum = Google_Protobuf_EnumDescriptorProto
    typealias Service = Google_Protobuf_ServiceDescriptorProto

    /// Where a definition sits: its file's syntax decides which labels are printed.
    struct Scope {
        var fullName: String
        var syntax: Syntax
    }

    enum Syntax {
        case proto2, proto3, editions

        init(_ text: String?) {
            switch text {
            case "proto3": self = .proto3
            case "editions": self = .editions
            default: self = .proto2  // protoc leaves the field out for proto2
            }
        }
    }

    enum Symbol {
        case message(Message, Scope)
        case enumeration(Enum, Scope)
        case service(Service, Scope)
        case method(Service, Scope, index: Int)
        /// A field or an extension declared in a message (`parent` nil: a top-level extension).
        case field(Field, Scope, parent: Message?)
        case oneof(Message, Scope, index: Int)
        case enumValue(Enum, Scope, index: Int)
    }

    private(set) var symbols: [String: Symbol] = [:]
    /// Services in the order files were added, for `list` without a server.
    private(set) var serviceNames: [String] = []

    mutating func add(_ file: Google_Protobuf_FileDescriptorProto) {
        let syntax = Syntax(file.syntax)
        let package = file.package ?? ""
        let prefix = package.isEmpty ? "" : package + "."
        for m in file.messageType { addMessage(m, prefix: prefix, syntax: syntax) }
        for e in file.enumType { addEnum(e, prefix: prefix, syntax: syntax) }
        for f in file.extension {
            let full = prefix + (f.name ?? "")
            symbols[full] = .field(f, Scope(fullName: full, syntax: syntax), parent: nil)
        }
        for s in file.service {
            let full = prefix + (s.name ?? "")
            let scope = Scope(fullName: full, syntax: syntax)
            symbols[full] = .service(s, scope)
            serviceNames.append(full)
            for (i, m) in s.method.enumerated() {
                symbols[full + "." + (m.name ?? "")] = .method(s, scope, index: i)
            }
        }
    }

    private mutating func addMessage(_ m: Message, prefix: String, syntax: Syntax) {
        let full = prefix + (m.name ?? "")
        let scope = Scope(fullName: full, syntax: syntax)
        symbols[full] = .message(m, scope)
        for f in m.field + m.extension {
            symbols[full + "." + (f.name ?? "")] = .field(f, Scope(fullName: full, syntax: syntax), parent: m)
        }
        for (i, o) in m.oneofDecl.enumerated() {
            symbols[full + "." + (o.name ?? "")] = .oneof(m, scope, index: i)
        }
        for n in m.nestedType { addMessage(n, prefix: full + ".", syntax: syntax) }
        for e in m.enumType { addEnum(e, prefix: full + ".", syntax: syntax) }
    }

    private mutating func addEnum(_ e: Enum, prefix: String, syntax: Syntax) {
        let full = prefix + (e.name ?? "")
        let scope = Scope(fullName: full, syntax: syntax)
        symbols[full] = .enumeration(e, scope)
        for (i, v) in e.value.enumerated() {
            symbols[full + "." + (v.name ?? "")] = .enumValue(e, scope, index: i)
        }
    }

    subscript(_ name: String) -> Symbol? { symbols[name] }
}
