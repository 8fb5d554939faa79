import ProtoCore

/// JSON (protobuf JSON mapping) → protobuf wire bytes, driven by a run-time schema.
public struct DynamicEncoder {
    public let pool: SchemaPool
    public init(pool: SchemaPool) { self.pool = pool }

    public func encode(_ json: JSONValue, as typeName: String) throws(ProtoJSONError) -> [UInt8] {
        var w = WireWriter()
        try encodeMessage(json, pool.message(typeName), into: &w)
        return w.bytes
    }

    private func encodeMessage(_ json: JSONValue, _ type: MessageInfo, into w: inout WireWriter) throws(ProtoJSONError) {
        if let special = try WellKnownJSON.encode(json, typeName: type.fullName) {
            w.bytes += special
            return
        }
        guard case .object(let members) = json else {
            throw ProtoJSONError("\(type.fullName) must be a JSON object")
        }
        for (key, value) in members {
            guard let field = type.field(jsonKey: key) else {
                throw ProtoJSONError("\(type.fullName) has no field \"\(key)\"")
            }
            if case .null = value { continue }
            if field.isRepeated {
                if let entry = pool.messages[field.typeName], entry.isMapEntry {
                    try encodeMap(value, field, entry, into: &w)
                    continue
                }
                guard case .array(let items) = value else {
                    throw ProtoJSONError("field \"\(key)\" is repeated: give a JSON array")
                }
                for item in items { try encodeField(item, field, into: &w) }
            } else {
                try encodeField(value, field, into: &w)
            }
        }
    }

    private func encodeMap(_ value: JSONValue, _ field: FieldInfo, _ entry: MessageInfo, into w: inout WireWriter) throws(ProtoJSONError) {
        guard case .object(let pairs) = value, let keyField = entry.field(number: 1), let valueField = entry.field(number: 2) else {
            throw ProtoJSONError("map field \"\(field.jsonName)\" must be a JSON object")
        }
        for (k, v) in pairs {
            var inner = WireWriter()
            let keyJSON: JSONValue = keyField.type == .string ? .string(k) : (keyField.type == .bool ? .bool(k == "true") : .number(k))
            try encodeField(keyJSON, keyField, into: &inner)
            try encodeField(v, valueField, into: &inner)
            w.tag(field.number, 2)
            w.lengthDelimited(inner.bytes)
        }
    }

    private func encodeField(_ value: JSONValue, _ field: FieldInfo, into w: inout WireWriter) throws(ProtoJSONError) {
        let name = field.jsonName
        switch field.type {
        case .message, .group:
            var inner = WireWriter()
            try encodeMessage(value, pool.message(field.typeName), into: &inner)
            w.tag(field.number, 2)
            w.lengthDelimited(inner.bytes)
        case .string:
            guard case .string(let s) = value else { throw ProtoJSONError("field \"\(name)\" needs a string") }
            w.tag(field.number, 2)
            w.lengthDelimited(Array(s.utf8))
        case .bytes:
            guard case .string(let s) = value, let b = Base64.decode(s) else {
                throw ProtoJSONError("field \"\(name)\" needs base64 bytes")
            }
            w.tag(field.number, 2)
            w.lengthDelimited(b)
        case .bool:
            guard case .bool(let b) = value else { throw ProtoJSONError("field \"\(name)\" needs true or false") }
            w.tag(field.number, 0)
            w.varint(b ? 1 : 0)
        case .enum:
            let number: Int32
            switch value {
            case .string(let s):
                guard let v = pool.enums[field.typeName]?.values.first(where: { $0.name == s }) else {
                    throw ProtoJSONError("\(s) is not a value of \(field.typeName)")
                }
                number = v.number
            case .number(let n):
                guard let v = Int32(n) else { throw ProtoJSONError("field \"\(name)\": bad enum number \(n)") }
                number = v
            default: throw ProtoJSONError("field \"\(name)\" needs an enum name")
            }
            w.tag(field.number, 0)
            w.varint(UInt64(bitPattern: Int64(number)))
        case .double, .float:
            let d = try Self.double(value, name)
            if field.type == .double { w.tag(field.number, 1); w.fixed64(d.bitPattern) }
            else { w.tag(field.number, 5); w.fixed32(Float(d).bitPattern) }
        case .int32, .int64, .sint32, .sint64, .sfixed32, .sfixed64:
            let v = try Self.integer(value, name, Int64.self)
            if field.type == .int32 || field.type == .sint32 || field.type == .sfixed32 {
                guard Int64(Int32.min)...Int64(Int32.max) ~= v else { throw ProtoJSONError("field \"\(name)\": \(v) out of int32 range") }
            }
            switch field.type {
            case .sint32, .sint64: w.tag(field.number, 0); w.varint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
            case .sfixed32: w.tag(field.number, 5); w.fixed32(UInt32(bitPattern: Int32(v)))
            case .sfixed64: w.tag(field.number, 1); w.fixed64(UInt64(bitPattern: v))
            default: w.tag(field.number, 0); w.varint(UInt64(bitPattern: v))
            }
        case .uint32, .uint64, .fixed32, .fixed64:
            let v = try Self.integer(value, name, UInt64.self)
            if field.type == .uint32 || field.type == .fixed32 {
                guard v <= UInt64(UInt32.max) else { throw ProtoJSONError("field \"\(name)\": \(v) out of uint32 range") }
            }
            switch field.type {
            case .fixed32: w.tag(field.number, 5); w.fixed32(UInt32(v))
            case .fixed64: w.tag(field.number, 1); w.fixed64(v)
            default: w.tag(field.number, 0); w.varint(v)
            }
        }
    }

    static func double(_ value: JSONValue, _ name: String) throws(ProtoJSONError) -> Double {
        switch value {
        case .number(let n): if let d = Double(n) { return d }
        case .string("NaN"): return .nan
        case .string("Infinity"): return .infinity
        case .string("-Infinity"): return -.infinity
        case .string(let s): if let d = Double(s) { return d }
        default: break
        }
        throw ProtoJSONError("field \"\(name)\" needs a number")
    }

    /// Integers may come as JSON numbers or strings (int64 is a string in proto JSON).
    static func integer<T: FixedWidthInteger>(_ value: JSONValue, _ name: String, _: T.Type) throws(ProtoJSONError) -> T {
        let text: String
        switch value {
        case .number(let n): text = n
        case .string(let s): text = s
        default: throw ProtoJSONError("field \"\(name)\" needs an integer")
        }
        if let v = T(text) { return v }
        if let d = Double(text), d == d.rounded(), let v = T(exactly: d) { return v }
        throw ProtoJSONError("field \"\(name)\": \(text) is not a valid \(T.self)")
    }
}
