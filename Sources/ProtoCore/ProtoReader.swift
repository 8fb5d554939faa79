internal import CProtobufC

/// Reads the fields of one unpacked protobuf-c message by field number. Handed to
/// `ProtoCMessage.init(protoReader:)`; valid only during that call, since the C message
/// is freed right after.
public struct ProtoReader {
    let base: UnsafeRawPointer
    let descriptor: UnsafePointer<ProtobufCMessageDescriptor>
    /// Large bytes fields cut out of the wire before unpacking (see `LargeBytesFields`).
    let largeFields: [UInt32: [UInt8]]

    init(base: UnsafeRawPointer, descriptor: UnsafePointer<ProtobufCMessageDescriptor>, largeFields: [UInt32: [UInt8]] = [:]) {
        self.base = base
        self.descriptor = descriptor
        self.largeFields = largeFields
    }

    private func slot(_ field: ProtoField, at address: UnsafeRawPointer) -> ProtoSlot {
        ProtoSlot(address: UnsafeMutableRawPointer(mutating: address), field: field.descriptor,
                  arena: nil, implicitPresence: false)
    }

    /// A singular field's value; the default when it is unset (an absent message reads as
    /// an empty one).
    public func value<T: ProtoFieldValue>(_ number: UInt32) -> T {
        let field = ProtoField(number, in: descriptor, as: T.self, repeated: false)
        if let large = largeFields[number], let value = large as? T { return value }
        return T._protoLoad(from: slot(field, at: base + field.offset))
    }

    /// A field with presence (sub-message, proto3 `optional`, proto2 `optional`, oneof
    /// member): nil unless the sender set it.
    public func optional<T: ProtoFieldValue>(_ number: UInt32) -> T? {
        let field = ProtoField(number, in: descriptor, as: T.self, repeated: false)
        guard isPresent(field) else { return nil }
        return T._protoLoad(from: slot(field, at: base + field.offset))
    }

    public func repeated<T: ProtoFieldValue>(_ number: UInt32) -> [T] {
        let field = ProtoField(number, in: descriptor, as: T.self, repeated: true)
        let count = (base + field.quantifierOffset).load(as: Int.self)
        guard count > 0, let elements = (base + field.offset).load(as: UnsafeRawPointer?.self) else { return [] }
        let stride = T._protoStorage.stride
        var values: [T] = []
        values.reserveCapacity(count)
        for index in 0..<count {
            values.append(T._protoLoad(from: slot(field, at: elements + index * stride)))
        }
        return values
    }

    /// A map field: in C a repeated entry message with the key as field 1 and the value as
    /// field 2. A key sent twice keeps its last value, as protobuf specifies.
    public func map<K: ProtoMapKey, V: ProtoFieldValue>(_ number: UInt32) -> [K: V] {
        let field = ProtoField(number, in: descriptor)
        precondition(field.label == PROTOBUF_C_LABEL_REPEATED && field.descriptor.pointee.type == PROTOBUF_C_TYPE_MESSAGE,
                     "field \(number) of \(String(cString: descriptor.pointee.name)) is not a map")
        let count = (base + field.quantifierOffset).load(as: Int.self)
        guard count > 0,
              let entries = (base + field.offset).load(as: UnsafePointer<UnsafeRawPointer?>?.self),
              let entryDescriptor = field.subMessageDescriptor else { return [:] }
        var values: [K: V] = [:]
        values.reserveCapacity(count)
        for index in 0..<count {
            guard let entry = entries[index] else { continue }
            let reader = ProtoReader(base: entry, descriptor: entryDescriptor)
            let key: K = reader.value(1)
            values[key] = reader.value(2) as V
        }
        return values
    }

    /// The field number of the member a oneof holds (any member's number names the
    /// oneof), or 0 when none is set.
    public func oneofCase(_ memberNumber: UInt32) -> UInt32 {
        let field = ProtoField(memberNumber, in: descriptor)
        precondition(field.isOneofMember, "field \(memberNumber) of \(String(cString: descriptor.pointee.name)) is not in a oneof")
        return (base + field.quantifierOffset).load(as: UInt32.self)
    }

    /// Whether the sender set the field; always true for proto3 scalars, which have no presence.
    public func has(_ number: UInt32) -> Bool {
        isPresent(ProtoField(number, in: descriptor))
    }

    private func isPresent(_ field: ProtoField) -> Bool {
        let descriptor = field.descriptor.pointee
        if field.label == PROTOBUF_C_LABEL_REPEATED {
            return (base + field.quantifierOffset).load(as: Int.self) > 0
        }
        if field.isOneofMember {
            return (base + field.quantifierOffset).load(as: UInt32.self) == descriptor.id
        }
        if field.isPointer {
            guard let pointer = (base + field.offset).load(as: UnsafeRawPointer?.self) else { return false }
            // An unset proto2 string points at its default, which is not a sent value.
            return field.label != PROTOBUF_C_LABEL_OPTIONAL || pointer != descriptor.default_value
        }
        if field.hasPresenceFlag {
            return (base + field.quantifierOffset).load(as: Int32.self) != 0
        }
        return true
    }
}
