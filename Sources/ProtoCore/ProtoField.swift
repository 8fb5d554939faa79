internal import CProtobufC

/// The facts about one C field the reader and writer act on, read from its descriptor.
struct ProtoField {
    let descriptor: UnsafePointer<ProtobufCFieldDescriptor>

    init(descriptor: UnsafePointer<ProtobufCFieldDescriptor>) { self.descriptor = descriptor }

    /// Looks `number` up in `message` and checks that the Swift side agrees with the C
    /// layout: a mismatch would read or write the wrong bytes, so it stops the process.
    init<T: ProtoFieldValue>(_ number: UInt32, in message: UnsafePointer<ProtobufCMessageDescriptor>,
                             as type: T.Type, repeated: Bool) {
        guard let field = protobuf_c_message_descriptor_get_field(message, number) else {
            preconditionFailure("\(String(cString: message.pointee.name)) has no field \(number)")
        }
        precondition(T._protoStorage.accepts(field.pointee.type),
                     "field \(number) of \(String(cString: message.pointee.name)) is not stored as \(T._protoStorage)")
        precondition((field.pointee.label == PROTOBUF_C_LABEL_REPEATED) == repeated,
                     "field \(number) of \(String(cString: message.pointee.name)) repeated mismatch")
        self.descriptor = field
    }

    init(_ number: UInt32, in message: UnsafePointer<ProtobufCMessageDescriptor>) {
        guard let field = protobuf_c_message_descriptor_get_field(message, number) else {
            preconditionFailure("\(String(cString: message.pointee.name)) has no field \(number)")
        }
        self.descriptor = field
    }

    var offset: Int { Int(descriptor.pointee.offset) }
    var quantifierOffset: Int { Int(descriptor.pointee.quantifier_offset) }
    var isOneofMember: Bool { descriptor.pointee.flags & UInt32(PROTOBUF_C_FIELD_FLAG_ONEOF.rawValue) != 0 }
    var label: ProtobufCLabel { descriptor.pointee.label }
    var isPointer: Bool {
        descriptor.pointee.type == PROTOBUF_C_TYPE_STRING || descriptor.pointee.type == PROTOBUF_C_TYPE_MESSAGE
    }
    /// proto3 singular without presence: the default value is simply not sent.
    var hasImplicitPresence: Bool { label == PROTOBUF_C_LABEL_NONE && !isOneofMember }
    /// proto2 `optional` scalars (and bytes) carry a `has_` flag; strings and messages use NULL.
    var hasPresenceFlag: Bool { label == PROTOBUF_C_LABEL_OPTIONAL && !isOneofMember && !isPointer }

    var subMessageDescriptor: UnsafePointer<ProtobufCMessageDescriptor>? {
        descriptor.pointee.descriptor?.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
    }
}
