internal import CProtobufC

/// Fills the fields of one protobuf-c message being built for packing. Handed to
/// `ProtoCMessage.writeFields(to:)`; everything it allocates belongs to the encoding's
/// arena and is freed with it.
public struct ProtoWriter {
    let arena: ProtoArena
    let base: UnsafeMutableRawPointer
    let descriptor: UnsafePointer<ProtobufCMessageDescriptor>
    /// Where large bytes fields of the top-level message go instead of the C tree.
    let largeFields: LargeBytesFields.Sink?

    init(arena: ProtoArena, base: UnsafeMutableRawPointer, descriptor: UnsafePointer<ProtobufCMessageDescriptor>,
         largeFields: LargeBytesFields.Sink? = nil) {
        self.arena = arena
        self.base = base
        self.descriptor = descriptor
        self.largeFields = largeFields
    }

    /// Sets a field. For oneof members and presence fields this also marks it set, so
    /// even a default value is sent.
    public func set<T: ProtoFieldValue>(_ number: UInt32, _ value: T) {
        let field = ProtoField(number, in: descriptor, as: T.self, repeated: false)
        if let largeFields, let bytes = value as? [UInt8], bytes.count >= LargeBytesFields.threshold,
           LargeBytesFields.qualifies(field.descriptor) {
            largeFields.fields.append((number, bytes))
            return
        }
        value._protoStore(into: ProtoSlot(address: base + field.offset, field: field.descriptor,
                                          arena: arena, implicitPresence: field.hasImplicitPresence))
        if field.isOneofMember {
            (base + field.quantifierOffset).storeBytes(of: field.descriptor.pointee.id, as: UInt32.self)
        } else if field.hasPresenceFlag {
            (base + field.quantifierOffset).storeBytes(of: 1, as: Int32.self)
        }
    }

    /// Sets a presence field when `value` is non-nil; nil leaves it unset.
    public func setOptional<T: ProtoFieldValue>(_ number: UInt32, _ value: T?) {
        if let value { set(number, value) }
    }

    public func setRepeated<T: ProtoFieldValue>(_ number: UInt32, _ values: [T]) {
        let field = ProtoField(number, in: descriptor, as: T.self, repeated: true)
        guard !values.isEmpty else { return }
        let stride = T._protoStorage.stride
        let elements = arena.allocate(byteCount: stride * values.count)
        for (index, value) in values.enumerated() {
            value._protoStore(into: ProtoSlot(address: elements + index * stride, field: field.descriptor,
                                              arena: arena, implicitPresence: false))
        }
        (base + field.quantifierOffset).storeBytes(of: values.count, as: Int.self)
        (base + field.offset).storeBytes(of: elements, as: UnsafeMutableRawPointer.self)
    }

    public func setMap<K: ProtoMapKey, V: ProtoFieldValue>(_ number: UInt32, _ values: [K: V]) {
        let field = ProtoField(number, in: descriptor)
        precondition(field.label == PROTOBUF_C_LABEL_REPEATED && field.descriptor.pointee.type == PROTOBUF_C_TYPE_MESSAGE,
                     "field \(number) of \(String(cString: descriptor.pointee.name)) is not a map")
        guard !values.isEmpty, let entryDescriptor = field.subMessageDescriptor else { return }
        let entries = arena.allocate(byteCount: MemoryLayout<UnsafeMutableRawPointer>.stride * values.count)
            .bindMemory(to: UnsafeMutableRawPointer.self, capacity: values.count)
        let sorted = values.sorted { K._protoOrdered($0.key, $1.key) }
        for (index, (key, value)) in sorted.enumerated() {
            let entry = arena.message(entryDescriptor)
            let writer = ProtoWriter(arena: arena, base: entry, descriptor: entryDescriptor)
            writer.set(1, key)
            writer.set(2, value)
            entries[index] = entry
        }
        (base + field.quantifierOffset).storeBytes(of: values.count, as: Int.self)
        (base + field.offset).storeBytes(of: UnsafeMutableRawPointer(entries), as: UnsafeMutableRawPointer.self)
    }
}

extension ProtoArena {
    /// A C message struct set to its defaults, ready to be filled.
    func message(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>) -> UnsafeMutableRawPointer {
        let message = allocate(byteCount: descriptor.pointee.sizeof_message)
        protobuf_c_message_init(descriptor, message)
        return message
    }
}
