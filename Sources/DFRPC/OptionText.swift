import GeneratedAPI
#if canImport(Glibc)
import Glibc
#endif

/// Standard options as protoprint writes them: `name = value`, sorted by name. Custom
/// options (extensions of the *Options messages) are not available to us: our descriptor
/// types keep known fields only.
enum OptionText {
    enum ValueType { case string, bytes, identifier, integer, floating }

    static func message(_ o: Google_Protobuf_MessageOptions?) -> [String] {
        guard let o else { return [] }
        return sorted([
            flag("deprecated", o.deprecated),
            flag("message_set_wire_format", o.messageSetWireFormat),
            flag("no_standard_descriptor_accessor", o.noStandardDescriptorAccessor),
        ])
    }

    static func field(_ f: Google_Protobuf_FieldDescriptorProto, syntax: DescriptorIndex.Syntax, type: ValueType) -> [String] {
        var options: [String?] = []
        // Only fields with presence have a default; proto3 has none.
        if let d = f.defaultValue, syntax != .proto3 { options.append("default = " + value(d, type)) }
        if let json = f.jsonName, f.extendee == nil, json != jsonName(f.name ?? "") {
            options.append("json_name = " + quoted(json))
        }
        if let o = f.options {
            options += [
                o.ctype.map { "ctype = " + ["STRING", "CORD", "STRING_PIECE"].element($0.rawValue) },
                o.jstype.map { "jstype = " + ["JS_NORMAL", "JS_STRING", "JS_NUMBER"].element($0.rawValue) },
                flag("deprecated", o.deprecated), flag("lazy", o.lazy), flag("packed", o.packed),
                flag("unverified_lazy", o.unverifiedLazy), flag("weak", o.weak),
            ]
        }
        return sorted(options)
    }

    static func enumeration(_ o: Google_Protobuf_EnumOptions?) -> [String] {
        guard let o else { return [] }
        return sorted([flag("allow_alias", o.allowAlias), flag("deprecated", o.deprecated)])
    }

    static func enumValue(_ o: Google_Protobuf_EnumValueOptions?) -> [String] {
        sorted([flag("deprecated", o?.deprecated)])
    }

    static func service(_ o: Google_Protobuf_ServiceOptions?) -> [String] {
        sorted([flag("deprecated", o?.deprecated)])
    }

    static func method(_ o: Google_Protobuf_MethodOptions?) -> [String] {
        guard let o else { return [] }
        let levels = ["IDEMPOTENCY_UNKNOWN", "NO_SIDE_EFFECTS", "IDEMPOTENT"]
        return sorted([flag("deprecated", o.deprecated),
                       o.idempotencyLevel.map { "idempotency_level = " + levels.element($0.rawValue) }])
    }

    private static func flag(_ name: String, _ value: Bool?) -> String? {
        value.map { "\(name) = \($0)" }
    }

    private static func sorted(_ options: [String?]) -> [String] {
        options.compactMap { $0 }.sorted()
    }

    /// protoc's default JSON name: underscores dropped, the lowercase letter after one raised.
    static func jsonName(_ name: String) -> String {
        var out = ""
        var afterUnderscore = false
        for c in name.unicodeScalars {
            if c != "_" {
                out.unicodeScalars.append(afterUnderscore && ("a"..."z").contains(c) ? Unicode.Scalar(c.value - 32) ?? c : c)
            }
            afterUnderscore = c == "_"
        }
        return out
    }

    /// A default value (descriptor text) as protoprint prints the parsed value.
    private static func value(_ text: String, _ type: ValueType) -> String {
        switch type {
        case .string: return quoted(text)
        // protoc already escaped bytes defaults C-style, which is the text format's escaping.
        case .bytes: return "\"" + text + "\""
        case .identifier, .integer: return text
        case .floating:
            switch text {
            case "inf": return "+Inf"
            case "-inf": return "-Inf"
            case "nan": return "NaN"
            default: return Double(text).map(fixed6) ?? text
            }
        }
    }

    /// Go's `%f` (six decimals), which protoprint uses for floating-point values.
    static func fixed6(_ d: Double) -> String {
        var buffer = [CChar](repeating: 0, count: 400)
        let n = withVaList([d]) { vsnprintf(&buffer, buffer.count, "%f", $0) }
        guard n > 0 else { return String(d) }
        return String(decoding: buffer.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A string literal as protoprint quotes it: C escapes for quotes, backslash and
    /// control characters, printable Unicode kept as is.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\" + String(scalar.value, radix: 8).leftPadded(3)
                } else if (0x80..<0xA0).contains(scalar.value) {
                    out += "\\u" + String(scalar.value, radix: 16, uppercase: true).leftPadded(4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

private extension Array where Element == String {
    /// An enum value's name, or its number when this build does not know it.
    func element(_ raw: Int32) -> String {
        indices.contains(Int(raw)) ? self[Int(raw)] : String(raw)
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
