/// A message type with one `bytes` field that a receiver may leave in the array it
/// arrived in (`InPlaceBytes`): a piece's content, which is only ever written on.
public protocol ProtoMessageWithInPlaceBytes: ProtoCMessage {
    /// The field's number, and where a decoded message keeps it.
    static var inPlaceBytesField: (number: UInt32, keyPath: WritableKeyPath<Self, [UInt8]> & Sendable) { get }
}

/// A received message whose large `bytes` field stays where it arrived: `bytes` is a
/// slice of the wire array, and `message` has that field empty. The plain decode keeps
/// the wire's storage too, but has to move the field to the front of it; this moves no
/// content. The wire format is the message's own: any encoder's bytes decode, and the
/// field is a slice of its own array when it is small or not the last thing sent.
public struct InPlaceBytes<Message: ProtoMessageWithInPlaceBytes>: ProtoMessage {
    public var message: Message
    public var bytes: ArraySlice<UInt8>

    public static var protoMessageName: String { Message.protoMessageName }

    public init() { self.init(message: Message(), bytes: []) }

    public init(message: Message, bytes: ArraySlice<UInt8>) {
        self.message = message
        self.bytes = bytes
    }

    public init(serializedBytes wire: [UInt8]) throws {
        let (number, keyPath) = Message.inPlaceBytesField
        let large = LargeBytesFields.largeFields(in: wire, for: Message.protoCDescriptor.pointer)
        // As our encoder sends it: the only large field, once, and last. What comes before it
        // is the rest of the message, which cannot hold the field again.
        if large.count == 1, let field = large.first, field.number == number, field.data.upperBound == wire.count {
            message = try Message(serializedBytes: Array(wire[..<field.start]))
            bytes = wire[field.data]
        } else {
            var decoded = try Message(serializedBytes: wire)
            bytes = decoded[keyPath: keyPath][...]
            decoded[keyPath: keyPath] = []
            message = decoded
        }
    }

    public func serializedBytes() -> [UInt8] {
        var whole = message
        whole[keyPath: Message.inPlaceBytesField.keyPath] = Array(bytes)
        return whole.serializedBytes()
    }
}
