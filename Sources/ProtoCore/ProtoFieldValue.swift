internal import CProtobufC

/// One field's (or one repeated element's) place in a C struct, handed to a value type
/// so it can load or store itself. Opaque outside ProtoCore: generated code never sees
/// the address.
public struct ProtoSlot {
    let address: UnsafeMutableRawPointer
    let field: UnsafePointer<ProtobufCFieldDescriptor>
    /// Present only while writing; every allocation the value needs comes from it.
    let arena: ProtoArena?
    /// A proto3 field without presence: its default is never sent, so it need not be stored.
    let implicitPresence: Bool
}

/// How a Swift value is laid out in protobuf-c's C structs. Several protobuf types share
/// one layout (int32, sint32 and sfixed32 are all `int32_t`); protobuf-c picks the wire
/// encoding from the field descriptor, so the Swift side only needs the layout.
public enum ProtoStorage: Sendable {
    case int32, int64, uint32, uint64, float, double, bool, enumeration, string, bytes, message

    /// Size of one element in a C array of this storage.
    var stride: Int {
        switch self {
        case .int32, .uint32, .float, .bool, .enumeration: return 4
        case .int64, .uint64, .double: return 8
        case .string, .message: return MemoryLayout<UnsafeRawPointer>.stride
        case .bytes: return MemoryLayout<ProtobufCBinaryData>.stride
        }
    }

    func accepts(_ type: ProtobufCType) -> Bool {
        switch self {
        case .int32: return type == PROTOBUF_C_TYPE_INT32 || type == PROTOBUF_C_TYPE_SINT32 || type == PROTOBUF_C_TYPE_SFIXED32
        case .int64: return type == PROTOBUF_C_TYPE_INT64 || type == PROTOBUF_C_TYPE_SINT64 || type == PROTOBUF_C_TYPE_SFIXED64
        case .uint32: return type == PROTOBUF_C_TYPE_UINT32 || type == PROTOBUF_C_TYPE_FIXED32
        case .uint64: return type == PROTOBUF_C_TYPE_UINT64 || type == PROTOBUF_C_TYPE_FIXED64
        case .float: return type == PROTOBUF_C_TYPE_FLOAT
        case .double: return type == PROTOBUF_C_TYPE_DOUBLE
        case .bool: return type == PROTOBUF_C_TYPE_BOOL
        case .enumeration: return type == PROTOBUF_C_TYPE_ENUM
        case .string: return type == PROTOBUF_C_TYPE_STRING
        case .bytes: return type == PROTOBUF_C_TYPE_BYTES
        case .message: return type == PROTOBUF_C_TYPE_MESSAGE
        }
    }
}

/// A Swift type that can be the value of a protobuf field. The underscored requirements
/// are ProtoCore's business: scalars, `String` and `[UInt8]` conform here, generated
/// enums and messages get them from `ProtoEnum` and `ProtoCMessage`.
public protocol ProtoFieldValue: Sendable, Hashable {
    /// The protobuf default (zero, empty, or a message with every field unset).
    init()
    static var _protoStorage: ProtoStorage { get }
    static func _protoLoad(from slot: ProtoSlot) -> Self
    func _protoStore(into slot: ProtoSlot)
}

/// A type protobuf allows as a map key. Map entries are packed in key order so that
/// equal maps always encode to equal bytes.
public protocol ProtoMapKey: ProtoFieldValue {
    static func _protoOrdered(_ a: Self, _ b: Self) -> Bool
}

extension Int32: ProtoMapKey {
    public static var _protoStorage: ProtoStorage { .int32 }
    public static func _protoLoad(from slot: ProtoSlot) -> Int32 { slot.address.load(as: Int32.self) }
    public func _protoStore(into slot: ProtoSlot) { slot.address.storeBytes(of: self, as: Int32.self) }
    public static func _protoOrdered(_ a: Int32, _ b: Int32) -> Bool { a < b }
}

extension Int64: ProtoMapKey {
    public static var _protoStorage: ProtoStorage { .int64 }
    public static func _protoLoad(from slot: ProtoSlot) -> Int64 { slot.address.load(as: Int64.self) }
    public func _protoStore(into slot: ProtoSlot) { slot.address.storeBytes(of: self, as: Int64.self) }
    public static func _protoOrdered(_ a: Int64, _ b: Int64) -> Bool { a < b }
}

extension UInt32: ProtoMapKey {
    public static var _protoStorage: ProtoStorage { .uint32 }
    public static func _protoLoad(from slot: ProtoSlot) -> UInt32 { slot.address.load(as: UInt32.self) }
    public func _protoStore(into slot: ProtoSlot) { slot.address.storeBytes(of: self, as: UInt32.self) }
    public static func _protoOrdered(_ a: UInt32, _ b: UInt32) -> Bool { a < b }
}

extension UInt64: ProtoMapKey {
    public static var _protoStorage: ProtoStorage { .uint64 }
    public static func _protoLoad(from slot: ProtoSlot) -> UInt64 { slot.address.load(as: UInt64.self) }
    public func _protoStore(into slot: ProtoSlot) { slot.address.storeBytes(of: self, as: UInt64.self) }
    public static func _protoOrdered(_ a: UInt64, _ b: UInt64) -> Bool { a < b }
}

extension Float: ProtoFieldValue {
    public static var _protoStorage: ProtoStorage { .float }
    public static func _protoLoad(from slot: ProtoSlot) -> Float { slot.address.load(as: Float.self) }
    public func _protoStore(into slot: ProtoSlot) { slot.address.storeBytes(of: self, as: Float.self) }
}

extension Double: ProtoFieldValue {
    public static var _protoStorage: ProtoStorage { .double }
    public static func _protoLoad(from slot: ProtoSlot) -> Double { slot.address.load(as: Double.self) }
    public func _protoStore(into slot: ProtoSlot) { slot.address.storeBytes(of: self, as: Double.self) }
}

extension Bool: ProtoMapKey {
    public static var _protoStorage: ProtoStorage { .bool }
    // protobuf_c_boolean is a C int.
    public static func _protoLoad(from slot: ProtoSlot) -> Bool { slot.address.load(as: Int32.self) != 0 }
    public func _protoStore(into slot: ProtoSlot) { slot.address.storeBytes(of: self ? 1 : 0, as: Int32.self) }
    public static func _protoOrdered(_ a: Bool, _ b: Bool) -> Bool { !a && b }
}

extension String: ProtoMapKey {
    public static var _protoStorage: ProtoStorage { .string }
    public static func _protoLoad(from slot: ProtoSlot) -> String {
        guard let chars = slot.address.load(as: UnsafePointer<CChar>?.self) else { return "" }
        // Invalid UTF-8 from the wire is repaired with U+FFFD rather than rejected.
        return String(cString: chars)
    }
    public func _protoStore(into slot: ProtoSlot) {
        if slot.implicitPresence && isEmpty { return }
        guard let arena = slot.arena else { return }
        slot.address.storeBytes(of: arena.cString(self), as: UnsafeMutablePointer<CChar>.self)
    }
    public static func _protoOrdered(_ a: String, _ b: String) -> Bool { a < b }
}

extension Array: ProtoFieldValue where Element == UInt8 {
    public static var _protoStorage: ProtoStorage { .bytes }
    public static func _protoLoad(from slot: ProtoSlot) -> [UInt8] {
        let binary = slot.address.load(as: ProtobufCBinaryData.self)
        guard binary.len > 0, let data = binary.data else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: binary.len))
    }
    public func _protoStore(into slot: ProtoSlot) {
        if slot.implicitPresence && isEmpty { return }
        guard let arena = slot.arena else { return }
        let binary = ProtobufCBinaryData(len: count, data: arena.bytes(self))
        slot.address.storeBytes(of: binary, as: ProtobufCBinaryData.self)
    }
}

/// A generated protobuf enum: a struct over the raw value, so values this build does not
/// know still decode and re-encode unchanged.
public protocol ProtoEnum: ProtoFieldValue {
    var rawValue: Int32 { get }
    init(rawValue: Int32)
}

extension ProtoEnum {
    public init() { self.init(rawValue: 0) }
    public static var _protoStorage: ProtoStorage { .enumeration }
    // C enums are forced to int size by protobuf-c (PROTOBUF_C__FORCE_ENUM_TO_BE_INT_SIZE).
    public static func _protoLoad(from slot: ProtoSlot) -> Self { Self(rawValue: slot.address.load(as: Int32.self)) }
    public func _protoStore(into slot: ProtoSlot) { slot.address.storeBytes(of: rawValue, as: Int32.self) }
}
