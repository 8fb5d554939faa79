import GeneratedAPI

/// Descriptors as .proto text, in the form grpcurl's `describe` prints: jhump/protoreflect's
/// protoprint with `Compact`, `SortElements` and `ForceFullyQualifiedNames`. Sorted means:
/// options first, then fields by number (a oneof where its lowest-numbered field sits),
/// nested messages and enums by name, extension ranges, extensions, reserved numbers and
/// reserved names; methods by name; enum values by number with zero first. Comments are
/// left out: reflection does not carry source info.
struct ProtoPrinter {
    typealias Message = DescriptorIndex.Message
    typealias Field = DescriptorIndex.Field
    typealias Enum = DescriptorIndex.Enum
    typealias Service = DescriptorIndex.Service

    /// For resolving field types: whether a message field is a map, and its key and value.
    let index: DescriptorIndex
    private var lines: [String] = []

    init(index: DescriptorIndex) { self.index = index }

    /// The printed text, without a trailing newline (grpcurl trims it too).
    var text: String { lines.joined(separator: "\n") }

    private mutating func emit(_ indent: Int, _ text: String) {
        lines.append(String(repeating: "  ", count: indent) + text)
    }

    // MARK: - Messages

    /// Field numbers above this are written `to max` in ranges.
    static let maxFieldNumber: Int32 = 536_870_911

    mutating func message(_ m: Message, syntax: DescriptorIndex.Syntax, indent: Int = 0) {
        emit(indent, "message \(m.name ?? "") {")
        messageBody(m, syntax: syntax, indent: indent + 1)
        emit(indent, "}")
    }

    private mutating func messageBody(_ m: Message, syntax: DescriptorIndex.Syntax, indent: Int) {
        for option in OptionText.message(m.options) { emit(indent, "option \(option);") }

        // Map entries and group bodies are printed with their field, not on their own.
        var inline: Set<String> = []
        for f in m.field {
            if let entry = mapEntry(f) { inline.insert(entry.name ?? "") }
            if isGroup(f, syntax) { inline.insert(Self.simpleName(f.typeName ?? "")) }
        }

        var printedOneofs: Set<Int32> = []
        for f in m.field.sorted(by: { ($0.number ?? 0) < ($1.number ?? 0) }) {
            if let i = realOneof(f, in: m) {
                guard printedOneofs.insert(i).inserted else { continue }
                oneof(m, index: Int(i), syntax: syntax, indent: indent)
            } else {
                field(f, syntax: syntax, nested: m.nestedType, indent: indent)
            }
        }
        for n in m.nestedType.sorted(by: { ($0.name ?? "") < ($1.name ?? "") }) where !inline.contains(n.name ?? "") {
            message(n, syntax: syntax, indent: indent)
        }
        for e in m.enumType.sorted(by: { ($0.name ?? "") < ($1.name ?? "") }) {
            enumeration(e, syntax: syntax, indent: indent)
        }
        if !m.extensionRange.isEmpty {
            // Exclusive ends on the wire; `to max` for the largest number a message allows.
            let max = (m.options?.messageSetWireFormat ?? false) ? Int32.max - 1 : Self.maxFieldNumber
            let ranges = m.extensionRange.map { ($0.start ?? 0, ($0.end ?? 1) - 1) }.sorted { $0.0 < $1.0 }
            emit(indent, "extensions \(Self.ranges(ranges, max: max));")
        }
        extensions(m.extension, syntax: syntax, indent: indent)
        if !m.reservedRange.isEmpty {
            let ranges = m.reservedRange.map { ($0.start ?? 0, ($0.end ?? 1) - 1) }.sorted { $0.0 < $1.0 }
            emit(indent, "reserved \(Self.ranges(ranges, max: Self.maxFieldNumber));")
        }
        if !m.reservedName.isEmpty {
            emit(indent, "reserved \(m.reservedName.sorted().map(OptionText.quoted).joined(separator: ", "));")
        }
    }

    /// `extend .pkg.Type { ... }` blocks, one per extended message, by its name.
    mutating func extensions(_ fields: [Field], syntax: DescriptorIndex.Syntax, indent: Int) {
        let byExtendee = Dictionary(grouping: fields, by: { Self.dotted($0.extendee ?? "") })
        for extendee in byExtendee.keys.sorted() {
            emit(indent, "extend \(extendee) {")
            for f in (byExtendee[extendee] ?? []).sorted(by: { ($0.number ?? 0) < ($1.number ?? 0) }) {
                field(f, syntax: syntax, nested: [], indent: indent + 1)
            }
            emit(indent, "}")
        }
    }

    /// A oneof that is not the synthetic one a proto3 `optional` field lives in.
    private func realOneof(_ f: Field, in m: Message) -> Int32? {
        guard let i = f.oneofIndex, m.oneofDecl.indices.contains(Int(i)), f.proto3Optional != true else { return nil }
        return i
    }

    mutating func oneof(_ m: Message, index i: Int, syntax: DescriptorIndex.Syntax, indent: Int) {
        emit(indent, "oneof \(m.oneofDecl[i].name ?? "") {")
        for f in m.field.filter({ $0.oneofIndex == Int32(i) }).sorted(by: { ($0.number ?? 0) < ($1.number ?? 0) }) {
            field(f, syntax: syntax, nested: m.nestedType, indent: indent + 1)
        }
        emit(indent, "}")
    }

    // MARK: - Fields

    /// One field; a group's body follows its line, as in the source.
    mutating func field(_ f: Field, syntax: DescriptorIndex.Syntax, nested: [Message], indent: Int) {
        let group = isGroup(f, syntax)
        var words: [String] = []
        if let label = label(f, syntax) { words.append(label) }
        if group { words.append("group") }
        words.append(typeText(f, syntax))
        if !group { words.append(f.name ?? "") }
        let head = words.joined(separator: " ") + " = \(f.number ?? 0)"
        let options = OptionText.field(f, syntax: syntax, type: fieldValueType(f))
        let tail = group ? " {" : ";"
        // protoprint writes up to three short options inline, more or longer ones one per line.
        let inline = options.joined(separator: ", ")
        if options.isEmpty {
            emit(indent, head + tail)
        } else if options.count <= 3 && inline.utf8.count <= 50 {
            emit(indent, head + " [\(inline)]" + tail)
        } else {
            emit(indent, head + " [")
            for (n, option) in options.enumerated() {
                emit(indent + 1, option + (n < options.count - 1 ? "," : ""))
            }
            emit(indent, "]" + tail)
        }
        if group, let body = nested.first(where: { $0.name == Self.simpleName(f.typeName ?? "") }) {
            messageBody(body, syntax: syntax, indent: indent + 1)
            emit(indent, "}")
        }
    }

    /// protoprint's rule: a label for repeated and required fields, for proto3 `optional`,
    /// and for every non-oneof field of a proto2 file; never for maps or oneof members.
    private func label(_ f: Field, _ syntax: DescriptorIndex.Syntax) -> String? {
        let label = f.label ?? .optional
        if label == .required && syntax == .editions { return nil }
        if f.proto3Optional == true { return "optional" }
        guard mapEntry(f) == nil, f.oneofIndex == nil, label != .optional || syntax == .proto2 else { return nil }
        switch label {
        case .required: return "required"
        case .repeated: return "repeated"
        default: return "optional"
        }
    }

    private func isGroup(_ f: Field, _ syntax: DescriptorIndex.Syntax) -> Bool {
        f.type == .group && syntax != .editions
    }

    /// The map entry message behind a `map<K, V>` field.
    func mapEntry(_ f: Field) -> Message? {
        guard f.label == .repeated, f.type == .message,
              case .message(let m, _)? = index[SchemaLoader.strip(f.typeName ?? "")],
              m.options?.mapEntry == true else { return nil }
        return m
    }

    private func typeText(_ f: Field, _ syntax: DescriptorIndex.Syntax) -> String {
        if let entry = mapEntry(f),
           let key = entry.field.first(where: { $0.number == 1 }), let value = entry.field.first(where: { $0.number == 2 }) {
            return "map<\(typeText(key, syntax)), \(typeText(value, syntax))>"
        }
        if isGroup(f, syntax) { return Self.simpleName(f.typeName ?? "") }
        switch f.type ?? .string {
        case .message, .enum, .group: return Self.dotted(f.typeName ?? "")
        default: return Self.scalarName(f.type ?? .string)
        }
    }

    /// How a field's default value is written: by the field's type (enums by name).
    private func fieldValueType(_ f: Field) -> OptionText.ValueType {
        switch f.type ?? .string {
        case .string: return .string
        case .bytes: return .bytes
        case .enum: return .identifier
        case .bool: return .identifier
        case .float, .double: return .floating
        default: return .integer
        }
    }

    static func scalarName(_ type: Field.TypeEnum) -> String {
        switch type {
        case .double: return "double"
        case .float: return "float"
        case .int64: return "int64"
        case .uint64: return "uint64"
        case .int32: return "int32"
        case .fixed64: return "fixed64"
        case .fixed32: return "fixed32"
        case .bool: return "bool"
        case .string: return "string"
        case .bytes: return "bytes"
        case .uint32: return "uint32"
        case .sfixed32: return "sfixed32"
        case .sfixed64: return "sfixed64"
        case .sint32: return "sint32"
        case .sint64: return "sint64"
        default: return "message"
        }
    }

    // MARK: - Enums

    mutating func enumeration(_ e: Enum, syntax: DescriptorIndex.Syntax, indent: Int = 0) {
        emit(indent, "enum \(e.name ?? "") {")
        for option in OptionText.enumeration(e.options) { emit(indent + 1, "option \(option);") }
        // An open (proto3) enum's zero value comes first even when negative values exist.
        let open = syntax != .proto2
        let values = e.value.sorted { a, b in
            let x = a.number ?? 0, y = b.number ?? 0
            if x == y { return (a.name ?? "") < (b.name ?? "") }
            if open && x == 0 { return true }
            if open && y == 0 { return false }
            return x < y
        }
        for v in values { emit(indent + 1, enumValueText(v)) }
        if !e.reservedRange.isEmpty {
            // Enum reserved ranges are inclusive on the wire.
            let ranges = e.reservedRange.map { ($0.start ?? 0, $0.end ?? 0) }.sorted { $0.0 < $1.0 }
            emit(indent + 1, "reserved \(Self.ranges(ranges, max: Int32.max));")
        }
        if !e.reservedName.isEmpty {
            emit(indent + 1, "reserved \(e.reservedName.sorted().map(OptionText.quoted).joined(separator: ", "));")
        }
        emit(indent, "}")
    }

    func enumValueText(_ v: Google_Protobuf_EnumValueDescriptorProto) -> String {
        let options = OptionText.enumValue(v.options)
        let suffix = options.isEmpty ? "" : " [\(options.joined(separator: ", "))]"
        return "\(v.name ?? "") = \(v.number ?? 0)\(suffix);"
    }

    mutating func enumValue(_ v: Google_Protobuf_EnumValueDescriptorProto) {
        emit(0, enumValueText(v))
    }

    // MARK: - Services

    mutating func service(_ s: Service, indent: Int = 0) {
        emit(indent, "service \(s.name ?? "") {")
        for option in OptionText.service(s.options) { emit(indent + 1, "option \(option);") }
        for m in s.method.sorted(by: { ($0.name ?? "") < ($1.name ?? "") }) { method(m, indent: indent + 1) }
        emit(indent, "}")
    }

    mutating func method(_ m: Google_Protobuf_MethodDescriptorProto, indent: Int = 0) {
        let input = (m.clientStreaming == true ? "stream " : "") + Self.dotted(m.inputType ?? "")
        let output = (m.serverStreaming == true ? "stream " : "") + Self.dotted(m.outputType ?? "")
        let head = "rpc \(m.name ?? "") ( \(input) ) returns ( \(output) )"
        let options = OptionText.method(m.options)
        if options.isEmpty {
            emit(indent, head + ";")
        } else {
            emit(indent, head + " {")
            for option in options { emit(indent + 1, "option \(option);") }
            emit(indent, "}")
        }
    }

    // MARK: - Names and ranges

    /// Inclusive ranges as `a`, `a to b` or `a to max`, in the order given.
    static func ranges(_ ranges: [(Int32, Int32)], max: Int32) -> String {
        ranges.map { start, end in
            if start == end { return "\(start)" }
            return end == max ? "\(start) to max" : "\(start) to \(end)"
        }.joined(separator: ", ")
    }

    /// A type name as grpcurl prints it: fully qualified, with the leading dot.
    static func dotted(_ name: String) -> String { name.hasPrefix(".") ? name : "." + name }

    static func simpleName(_ name: String) -> String {
        name.split(separator: ".").last.map(String.init) ?? name
    }
}
