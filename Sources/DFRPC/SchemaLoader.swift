import GeneratedAPI
import ProtoJSON

/// Turns `FileDescriptorProto`s (from reflection or a descriptor set) into a `SchemaPool`
/// for JSON and a `DescriptorIndex` for describe.
struct SchemaLoader {
    private(set) var pool = SchemaPool()
    private(set) var index = DescriptorIndex()
    private(set) var loadedFiles: Set<String> = []

    mutating func add(_ file: Google_Protobuf_FileDescriptorProto) {
        let name = file.name ?? ""
        guard loadedFiles.insert(name).inserted else { return }
        index.add(file)
        let proto2 = DescriptorIndex.Syntax(file.syntax) == .proto2
        let prefix = file.package.map { $0.isEmpty ? "" : $0 + "." } ?? ""
        for message in file.messageType { addMessage(message, scope: prefix, proto2: proto2) }
        for e in file.enumType { addEnum(e, scope: prefix) }
        for service in file.service {
            let full = prefix + (service.name ?? "")
            pool.services[full] = ServiceInfo(fullName: full, methods: service.method.map { m in
                MethodInfo(name: m.name ?? "", inputType: Self.strip(m.inputType ?? ""), outputType: Self.strip(m.outputType ?? ""),
                           clientStreaming: m.clientStreaming ?? false, serverStreaming: m.serverStreaming ?? false)
            })
        }
    }

    private mutating func addMessage(_ message: Google_Protobuf_DescriptorProto, scope: String, proto2: Bool) {
        let full = scope + (message.name ?? "")
        for nested in message.nestedType { addMessage(nested, scope: full + ".", proto2: proto2) }
        for e in message.enumType { addEnum(e, scope: full + ".") }
        let fields = message.field.compactMap { f -> FieldInfo? in
            guard let type = FieldType(rawValue: Int(f.type?.rawValue ?? 0)) else { return nil }
            let oneof = f.oneofIndex.flatMap { i in message.oneofDecl.indices.contains(Int(i)) ? message.oneofDecl[Int(i)].name : nil }
            // proto2 `optional` scalars track presence: a zero that was sent is printed.
            let label = f.label?.rawValue ?? 1
            return FieldInfo(name: f.name ?? "", jsonName: f.jsonName, number: Int(f.number ?? 0), type: type,
                             isRepeated: label == 3, typeName: Self.strip(f.typeName ?? ""),
                             oneofName: oneof, hasPresence: proto2 && label != 3, isProto3Optional: f.proto3Optional ?? false)
        }
        pool.messages[full] = MessageInfo(fullName: full, fields: fields, isMapEntry: message.options?.mapEntry ?? false)
    }

    private mutating func addEnum(_ e: Google_Protobuf_EnumDescriptorProto, scope: String) {
        let full = scope + (e.name ?? "")
        pool.enums[full] = EnumInfo(fullName: full, values: e.value.map { ($0.name ?? "", $0.number ?? 0) })
    }

    static func strip(_ typeName: String) -> String {
        typeName.hasPrefix(".") ? String(typeName.dropFirst()) : typeName
    }
}
