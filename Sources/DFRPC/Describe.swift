/// `describe` output as grpcurl prints it: "NAME is a message:" (service, method, enum, ...)
/// then the definition as .proto text.
enum Describe {
    static func text(_ name: String, _ symbol: DescriptorIndex.Symbol, index: DescriptorIndex) -> String {
        var printer = ProtoPrinter(index: index)
        let kind: String
        switch symbol {
        case .message(let m, let scope):
            // grpcurl shows the field a map entry or group type stands for, not the type.
            if let (field, parent) = owningField(of: m, scope: scope, index: index) {
                kind = field.type == .group ? "the type of a group field" : "the entry type for a map field"
                printer.field(field, syntax: scope.syntax, nested: parent.nestedType, indent: 0)
            } else {
                kind = "a message"
                printer.message(m, syntax: scope.syntax)
            }
        case .enumeration(let e, let scope):
            kind = "an enum"
            printer.enumeration(e, syntax: scope.syntax)
        case .service(let s, _):
            kind = "a service"
            printer.service(s)
        case .method(let s, _, let i):
            kind = "a method"
            printer.method(s.method[i])
        case .field(let f, let scope, let parent):
            if f.extendee != nil {
                kind = "an extension"
                printer.extensions([f], syntax: scope.syntax, indent: 0)
            } else {
                kind = f.type == .group ? "a group field" : "a field"
                printer.field(f, syntax: scope.syntax, nested: parent?.nestedType ?? [], indent: 0)
            }
        case .oneof(let m, let scope, let i):
            kind = "a one-of"
            printer.oneof(m, index: i, syntax: scope.syntax, indent: 0)
        case .enumValue(let e, _, let i):
            kind = "an enum value"
            printer.enumValue(e.value[i])
        }
        return "\(name) is \(kind):\n\(printer.text)"
    }

    /// The field of the enclosing message whose map entry or group type `m` is.
    private static func owningField(of m: DescriptorIndex.Message, scope: DescriptorIndex.Scope,
                                    index: DescriptorIndex) -> (DescriptorIndex.Field, DescriptorIndex.Message)? {
        guard let dot = scope.fullName.lastIndex(of: "."),
              case .message(let parent, _)? = index[String(scope.fullName[..<dot])] else { return nil }
        let isMapEntry = m.options?.mapEntry == true
        let field = parent.field.first { f in
            SchemaLoader.strip(f.typeName ?? "") == scope.fullName
                && (isMapEntry ? f.label == .repeated : f.type == .group && scope.syntax != .editions)
        }
        return field.map { ($0, parent) }
    }
}
