import ProtoCore

/// Protobuf wire bytes → JSON (protobuf JSON mapping: lowerCamelCase keys, int64 as
/// strings, bytes as base64, enums by name, defaults omitted unless asked for), driven by a
/// run-time schema.
public struct DynamicDecoder {
    public let pool: SchemaPool
    /// Print fields that hold their default value too, as grpcurl's `-emit-defaults` does
    /// (golang/protobuf jsonpb's EmitDefaults): zero scalars, the enum's first value, `[]`,
    /// `{}`, and `null` for unset messages. Fields in a oneof (also proto3 `optional`) stay
    /// out when unset: printing them would claim a member was chosen.
    public var emitDefaults: Bool

    public init(pool: SchemaPool, emitDefaults: Bool = false) {
        self.pool = pool
        self.emitDefaults = emitDefaults
    }

    public func decode(_ bytes: [UInt8], as typeName: String) throws(ProtoJSONError) -> JSONValue {
        try decodeMessage(bytes, pool.message(typeName))
    }

    private func decodeMessage(_ bytes: [UInt8], _ type: MessageInfo) throws(ProtoJSONError) -> JSONValue {
        var values: [Int: [JSONValue]] = [:]
        var reader = WireReader(bytes)
        while !reader.atEnd {
            let key = try reader.varint()
            let number = Int(key >> 3), wireType = key & 7
            guard let field = type.field(number: number) else {
                try reader.skip(wireType)
                continue
            }
            if wireType == 2 && field.isRepeated && field.type.isPackable {
                var packed = WireReader(try reader.lengthDelimited())
                while !packed.atEnd { values[number, default: []].append(try scalar(&packed, field)) }
            } else if wireType == 2 && (field.type == .message || field.type == .string || field.type == .bytes) {
                let payload = try reader.lengthDelimited()
                values[number, default: []].append(try lengthDelimitedValue(payload, field))
            } else if wireType == field.type.wireType {
                values[number, default: []].append(try scalar(&reader, field))
            } else {
                throw ProtoJSONError("field \(field.name) of \(type.fullName) arrived with wire type \(wireType)")
            }
        }
        if let special = WellKnownJSON.decode(values, typeName: type.fullName) { return special }
        var members: [(String, JSONValue)] = []
        for field in type.fields {
            guard let list = values[field.number], let last = list.last else {
                if emitDefaults && field.oneofName == nil { members.append((field.jsonName, defaultValue(field))) }
                continue
            }
            if field.isRepeated {
                if let entry = pool.messages[field.typeName], entry.isMapEntry {
                    members.append((field.jsonName, mapObject(list)))
                } else {
                    members.append((field.jsonName, .array(list)))
                }
            } else if field.hasPresence || emitDefaults || !Self.isDefault(last) {
                members.append((field.jsonName, last))
            }
        }
        return .object(members)
    }

    /// An absent field's value when defaults are printed.
    private func defaultValue(_ field: FieldInfo) -> JSONValue {
        if field.isRepeated {
            if let entry = pool.messages[field.typeName], entry.isMapEntry { return .object([]) }
            return .array([])
        }
        switch field.type {
        case .message, .group: return .null
        case .enum:
            // An enum's default is its first value (proto3 requires that to be 0).
            if let first = pool.enums[field.typeName]?.values.first { return .string(first.name) }
            return .number("0")
        default: return Self.zero(field)
        }
    }

    private func mapObject(_ entries: [JSONValue]) -> JSONValue {
        var pairs: [(String, JSONValue)] = []
        for entry in entries {
            let key: String
            switch entry["key"] {
            case .string(let s)?: key = s
            case .number(let n)?: key = n
            case .bool(let b)?: key = b ? "true" : "false"
            default: key = ""
            }
            pairs.append((key, entry["value"] ?? .null))
        }
        return .object(pairs)
    }

    private func lengthDelimitedValue(_ payload: [UInt8], _ field: FieldInfo) throws(ProtoJSONError) -> JSONValue {
        switch field.type {
        case .string: return .string(String(decoding: payload, as: UTF8.self))
        case .bytes: return .string(Base64.encode(payload))
        default:
            let type = try pool.message(field.typeName)
            if type.isMapEntry {
                // Keep key and value even when default, so the map entry is complete.
                var entry = try decodeMessage(payload, type)
                if case .object(var m) = entry {
                    if m.first(where: { $0.0 == "key" }) == nil, let k = type.field(number: 1) { m.insert(("key", Self.zero(k)), at: 0) }
                    if m.first(where: { $0.0 == "value" }) == nil, let v = type.field(number: 2) { m.append(("value", Self.zero(v))) }
                    entry = .object(m)
                }
                return entry
            }
            return try decodeMessage(payload, type)
        }
    }

    private func scalar(_ r: inout WireReader, _ field: FieldInfo) throws(ProtoJSONError) -> JSONValue {
        switch field.type {
        case .bool: return .bool(try r.varint() != 0)
        case .int32: return .number(String(Int32(truncatingIfNeeded: Int64(bitPattern: try r.varint()))))
        case .int64: return .string(String(Int64(bitPattern: try r.varint())))
        case .uint32: return .number(String(UInt32(truncatingIfNeeded: try r.varint())))
        case .uint64: return .string(String(try r.varint()))
        case .sint32, .sint64:
            let raw = try r.varint()
            let v = Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
            return field.type == .sint32 ? .number(String(v)) : .string(String(v))
        case .fixed32: return .number(String(try r.fixed32()))
        case .sfixed32: return .number(String(Int32(bitPattern: try r.fixed32())))
        case .fixed64: return .string(String(try r.fixed64()))
        case .sfixed64: return .string(String(Int64(bitPattern: try r.fixed64())))
        case .double: return Self.floating(Double(bitPattern: try r.fixed64()))
        case .float: return Self.floating(Double(Float(bitPattern: try r.fixed32())))
        case .enum:
            let n = Int32(truncatingIfNeeded: Int64(bitPattern: try r.varint()))
            if let v = pool.enums[field.typeName]?.values.first(where: { $0.number == n }) { return .string(v.name) }
            return .number(String(n))
        default:
            throw ProtoJSONError("unexpected scalar type \(field.type.protoName)")
        }
    }

    static func floating(_ d: Double) -> JSONValue {
        if d.isNaN { return .string("NaN") }
        if d.isInfinite { return .string(d > 0 ? "Infinity" : "-Infinity") }
        if d == d.rounded() && abs(d) < 1e15 { return .number(String(Int64(d))) }
        return .number(String(d))
    }

    static func isDefault(_ v: JSONValue) -> Bool {
        switch v {
        case .bool(false), .number("0"), .string(""), .string("0"): return true
        default: return false
        }
    }

    static func zero(_ field: FieldInfo) -> JSONValue {
        switch field.type {
        case .string, .bytes: return .string("")
        case .bool: return .bool(false)
        case .int64, .uint64, .sint64, .fixed64, .sfixed64: return .string("0")
        case .message: return .object([])
        default: return .number("0")
        }
    }
}
