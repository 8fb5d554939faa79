internal import CProtobufC

/// A message encoded and decoded by protobuf-c. Generated types implement the three
/// requirements below with plain reader/writer calls by field number; this extension
/// supplies `ProtoMessage`'s coding and the rest of `ProtoFieldValue`, which is where
/// all pointer handling lives.
public protocol ProtoCMessage: ProtoMessage, ProtoFieldValue {
    /// The C descriptor of this message's struct.
    static var protoCDescriptor: ProtoCDescriptor { get }
    init(protoReader reader: ProtoReader)
    func writeFields(to writer: ProtoWriter)
}

extension ProtoCMessage {
    public init(serializedBytes wire: [UInt8]) throws {
        let descriptor = Self.protoCDescriptor.pointer
        let byteCount = wire.count
        // Handed over, not copied: a piece's content can then keep the wire's storage.
        let split = LargeBytesFields.split(consume wire, for: descriptor)
        let bytes = split.rest
        var placeholder: UInt8 = 0
        let unpacked = withUnsafePointer(to: &placeholder) { placeholder in
            bytes.withUnsafeBufferPointer { buffer in
                // An empty array may have no storage; protobuf-c reads nothing at length 0.
                protobuf_c_message_unpack(descriptor, nil, buffer.count, buffer.baseAddress ?? placeholder)
            }
        }
        guard let unpacked else {
            throw ProtoDecodingError(messageName: Self.protoMessageName, byteCount: byteCount)
        }
        defer { protobuf_c_message_free_unpacked(unpacked, nil) }
        self.init(protoReader: ProtoReader(base: UnsafeRawPointer(unpacked), descriptor: descriptor,
                                           largeFields: split.fields))
    }

    public func serializedBytes() -> [UInt8] {
        let arena = ProtoArena()
        let descriptor = Self.protoCDescriptor.pointer
        let root = arena.message(descriptor)
        let large = LargeBytesFields.Sink()
        writeFields(to: ProtoWriter(arena: arena, base: root, descriptor: descriptor, largeFields: large))
        let message = root.assumingMemoryBound(to: ProtobufCMessage.self)
        // The arena must outlive packing: the C tree points into it throughout.
        return withExtendedLifetime(arena) {
            let size = protobuf_c_message_get_packed_size(message)
            if !large.fields.isEmpty {
                return LargeBytesFields.append(large.fields, after: size) { protobuf_c_message_pack(message, $0) }
            }
            guard size > 0 else { return [] }
            return [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
                guard let out = buffer.baseAddress else { initialized = 0; return }
                initialized = protobuf_c_message_pack(message, out)
            }
        }
    }

    public static var _protoStorage: ProtoStorage { .message }

    public static func _protoLoad(from slot: ProtoSlot) -> Self {
        guard let message = slot.address.load(as: UnsafeRawPointer?.self),
              let descriptor = ProtoField(descriptor: slot.field).subMessageDescriptor else { return Self() }
        assert(descriptor == Self.protoCDescriptor.pointer, "\(Self.self) read from a field of another message type")
        return Self(protoReader: ProtoReader(base: message, descriptor: descriptor))
    }

    public func _protoStore(into slot: ProtoSlot) {
        guard let arena = slot.arena, let descriptor = ProtoField(descriptor: slot.field).subMessageDescriptor else { return }
        assert(descriptor == Self.protoCDescriptor.pointer, "\(Self.self) written to a field of another message type")
        let message = arena.message(descriptor)
        writeFields(to: ProtoWriter(arena: arena, base: message, descriptor: descriptor))
        slot.address.storeBytes(of: message, as: UnsafeMutableRawPointer.self)
    }
}
