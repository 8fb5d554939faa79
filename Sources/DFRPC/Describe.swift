import ProtoJSON

/// Text forms of services and messages, in .proto syntax, as grpcurl describes them.
enum Describe {
    static func service(_ s: ServiceInfo) -> String {
        var out = "\(s.fullName) is a service:\nservice \(s.fullName.split(separator: ".").last ?? "") {\n"
        for m in s.methods {
            let input = (m.clientStreaming ? "stream " : "") + "." + m.inputType
            let output = (m.serverStreaming ? "stream " : "") + "." + m.outputType
            out += "  rpc \(m.name) ( \(input) ) returns ( \(output) );\n"
        }
        return out + "}"
    }

    static func method(_ service: ServiceInfo, _ m: MethodInfo) -> String {
        let input = (m.clientStreaming ? "stream " : "") + "." + m.inputType
        let output = (m.serverStreaming ? "stream " : "") + "." + m.outputType
        return "\(service.fullName).\(m.name) is a method:\nrpc \(m.name) ( \(input) ) returns ( \(output) );"
    }

    static func message(_ m: MessageInfo, pool: SchemaPool) -> String {
        var out = "\(m.fullName) is a message:\nmessage \(m.fullName.split(separator: ".").last ?? "") {\n"
        var openOneof: String?
        for f in m.fields {
            // A proto3 `optional` field's oneof is synthetic: grpcurl prints the field alone.
            let oneof = f.isProto3Optional ? nil : f.oneofName
            if oneof != openOneof {
                if openOneof != nil { out += "  }\n" }
                if let oneof { out += "  oneof \(oneof) {\n" }
                openOneof = oneof
            }
            let indent = openOneof == nil ? "  " : "    "
            let label = f.isProto3Optional ? "optional " : ""
            out += "\(indent)\(label)\(typeText(f, pool)) \(f.name) = \(f.number);\n"
        }
        if openOneof != nil { out += "  }\n" }
        return out + "}"
    }

    static func enumeration(_ e: EnumInfo) -> String {
        var out = "\(e.fullName) is an enum:\nenum \(e.fullName.split(separator: ".").last ?? "") {\n"
        for v in e.values { out += "  \(v.name) = \(v.number);\n" }
        return out + "}"
    }

    private static func typeText(_ f: FieldInfo, _ pool: SchemaPool) -> String {
        if f.isRepeated, let entry = pool.messages[f.typeName], entry.isMapEntry,
           let k = entry.fields.first(where: { $0.number == 1 }), let v = entry.fields.first(where: { $0.number == 2 }) {
            return "map<\(scalarOrName(k)), \(scalarOrName(v))>"
        }
        return (f.isRepeated ? "repeated " : "") + scalarOrName(f)
    }

    private static func scalarOrName(_ f: FieldInfo) -> String {
        f.type == .message || f.type == .enum ? "." + f.typeName : f.type.protoName
    }
}
