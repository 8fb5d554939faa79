/// A protobuf schema known only at run time (from reflection), enough to encode and
/// decode messages as JSON. Names are fully qualified without the leading dot.
public enum FieldType: Int, Sendable {
    case double = 1, float, int64, uint64, int32, fixed64, fixed32, bool, string, group, message, bytes,
         uint32, `enum`, sfixed32, sfixed64, sint32, sint64

    /// The wire type a value of this type uses when not packed.
    var wireType: UInt64 {
        switch self {
        case .double, .fixed64, .sfixed64: return 1
        case .float, .fixed32, .sfixed32: return 5
        case .string, .bytes, .message: return 2
        case .group: return 3
        default: return 0
        }
    }

    var isPackable: Bool { wireType == 0 || wireType == 1 || wireType == 5 }

    public var protoName: String {
        switch self {
        case .double: return "double"
        case .float: return "float"
        case .int64: return "int64"
        case .uint64: return "uint64"
        case .int32: return "int32"
        case .fixed64: return "fixed64"
        case .fixed32: return "fixed32"
        case .bool: return "bool"
        case .string: return "string"
        case .group: return "group"
        case .message: return "message"
        case .bytes: return "bytes"
        case .uint32: return "uint32"
        case .enum: return "enum"
        case .sfixed32: return "sfixed32"
        case .sfixed64: return "sfixed64"
        case .sint32: return "sint32"
        case .sint64: return "sint64"
        }
    }
}

public struct FieldInfo: Sendable {
    public var name: String
    public var jsonName: String
    public var number: Int
    public var type: FieldType
    public var isRepeated: Bool
    /// Message or enum type name for `.message` / `.enum` fields.
    public var typeName: String
    /// The oneof this field belongs to (including proto3 optional's synthetic oneof).
    public var oneofName: String?
    /// Whether an unset value is distinguishable from the default (oneof, optional, message).
    public var hasPresence: Bool
    /// A proto3 `optional` field: its oneof is synthetic and not part of the message's shape.
    public var isProto3Optional: Bool

    public init(name: String, jsonName: String? = nil, number: Int, type: FieldType, isRepeated: Bool = false,
                typeName: String = "", oneofName: String? = nil, hasPresence: Bool = false, isProto3Optional: Bool = false) {
        self.name = name
        self.jsonName = jsonName ?? FieldInfo.lowerCamel(name)
        self.number = number
        self.type = type
        self.isRepeated = isRepeated
        self.typeName = typeName
        self.oneofName = oneofName
        self.hasPresence = hasPresence || isProto3Optional || oneofName != nil || type == .message
        self.isProto3Optional = isProto3Optional
    }

    static func lowerCamel(_ name: String) -> String {
        var out = ""
        var upper = false
        for c in name {
            if c == "_" { upper = true; continue }
            out.append(upper ? Character(c.uppercased()) : c)
            upper = false
        }
        return out
    }
}

public struct MessageInfo: Sendable {
    public var fullName: String
    public var fields: [FieldInfo]
    public var isMapEntry: Bool

    public init(fullName: String, fields: [FieldInfo], isMapEntry: Bool = false) {
        self.fullName = fullName
        self.fields = fields
        self.isMapEntry = isMapEntry
    }

    func field(number: Int) -> FieldInfo? { fields.first { $0.number == number } }
    func field(jsonKey: String) -> FieldInfo? { fields.first { $0.jsonName == jsonKey || $0.name == jsonKey } }
}

public struct EnumInfo: Sendable {
    public var fullName: String
    public var values: [(name: String, number: Int32)]
    public init(fullName: String, values: [(name: String, number: Int32)]) {
        self.fullName = fullName
        self.values = values
    }
}

public struct MethodInfo: Sendable {
    public var name: String
    public var inputType: String
    public var outputType: String
    public var clientStreaming: Bool
    public var serverStreaming: Bool
    public init(name: String, inputType: String, outputType: String, clientStreaming: Bool, serverStreaming: Bool) {
        self.name = name
        self.inputType = inputType
        self.outputType = outputType
        self.clientStreaming = clientStreaming
        self.serverStreaming = serverStreaming
    }
}

public struct ServiceInfo: Sendable {
    public var fullName: String
    public var methods: [MethodInfo]
    public init(fullName: String, methods: [MethodInfo]) {
        self.fullName = fullName
        self.methods = methods
    }
}

/// Everything learned about a server's types.
public struct SchemaPool: Sendable {
    public var messages: [String: MessageInfo] = [:]
    public var enums: [String: EnumInfo] = [:]
    public var services: [String: ServiceInfo] = [:]
    public init() {}

    func message(_ name: String) throws(ProtoJSONError) -> MessageInfo {
        guard let m = messages[name] else { throw ProtoJSONError("unknown message type \(name)") }
        return m
    }
}

public struct ProtoJSONError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
