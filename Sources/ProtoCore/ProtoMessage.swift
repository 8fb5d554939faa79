/// A protobuf message as a Swift value type.
///
/// Generated types conform to this; encoding and decoding run through protobuf-c, but
/// no caller ever sees a C pointer or frees anything.
public protocol ProtoMessage: Sendable, Equatable {
    /// The fully qualified protobuf name, e.g. `common.v2.Peer`.
    static var protoMessageName: String { get }
    init()
    /// Decodes the protobuf wire format; throws `ProtoDecodingError` on malformed input.
    init(serializedBytes bytes: [UInt8]) throws
    /// Encodes to the protobuf wire format.
    func serializedBytes() -> [UInt8]
}

extension ProtoMessage {
    /// A message built in one expression: `Common_V2_Piece.with { $0.number = 1 }`.
    public static func with(_ populate: (inout Self) throws -> Void) rethrows -> Self {
        var message = Self()
        try populate(&message)
        return message
    }
}

/// The wire bytes could not be decoded as the expected message.
public struct ProtoDecodingError: Error, CustomStringConvertible, Sendable {
    public var messageName: String
    public var byteCount: Int
    public init(messageName: String, byteCount: Int) {
        self.messageName = messageName
        self.byteCount = byteCount
    }
    public var description: String { "cannot decode \(byteCount) bytes as \(messageName)" }
}
