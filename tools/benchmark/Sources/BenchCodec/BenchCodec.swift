// Hand-written codec for the handful of grpc.testing messages the benchmark needs.
// Wire format (proto3):
//   SimpleRequest              { int32 response_size = 2; ... }
//   StreamingOutputCallRequest { repeated ResponseParameters response_parameters = 2; ... }
//   ResponseParameters         { int32 size = 1; int32 interval_us = 2; ... }
//   SimpleResponse / StreamingOutputCallResponse { Payload payload = 1; ... }
//   Payload                    { PayloadType type = 1; bytes body = 2; }
import GRPCCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Messages travel as plain byte arrays; the handlers decode the fields they need.
public struct BytesSerializer: MessageSerializer {
    public typealias Message = [UInt8]
    public init() {}
    public func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
        Bytes(message)
    }
}

public struct BytesDeserializer: MessageDeserializer {
    public typealias Message = [UInt8]
    public init() {}
    public func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { [UInt8]($0) }
    }
}

public enum TestServiceMethods {
    public static let service = "grpc.testing.TestService"
    public static let emptyCall = MethodDescriptor(fullyQualifiedService: service, method: "EmptyCall")
    public static let unaryCall = MethodDescriptor(fullyQualifiedService: service, method: "UnaryCall")
    public static let streamingOutputCall = MethodDescriptor(fullyQualifiedService: service, method: "StreamingOutputCall")
}

public struct WireError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A minimal protobuf reader: visits each field, exposing varints and length-delimited slices.
public struct ProtoReader {
    public enum Value {
        case varint(UInt64)
        case bytes(ArraySlice<UInt8>)
        case fixed
    }

    private let bytes: ArraySlice<UInt8>
    private var index: Int
    private var end: Int { bytes.endIndex }

    public init(_ bytes: [UInt8]) { self.init(bytes[...]) }
    public init(_ slice: ArraySlice<UInt8>) { self.bytes = slice; self.index = slice.startIndex }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard index < end, shift < 64 else { throw WireError("truncated varint") }
            let b = bytes[index]; index += 1
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// Returns the next (field number, value), or nil at the end.
    public mutating func next() throws -> (Int, Value)? {
        guard index < end else { return nil }
        let key = try varint()
        let field = Int(key >> 3)
        switch key & 7 {
        case 0: return (field, .varint(try varint()))
        case 1:
            guard end - index >= 8 else { throw WireError("truncated fixed64") }
            index += 8; return (field, .fixed)
        case 2:
            let n = Int(try varint())
            guard n >= 0, end - index >= n else { throw WireError("truncated length-delimited field") }
            let s = bytes[index ..< index + n]; index += n
            return (field, .bytes(s))
        case 5:
            guard end - index >= 4 else { throw WireError("truncated fixed32") }
            index += 4; return (field, .fixed)
        default: throw WireError("unsupported wire type \(key & 7)")
        }
    }
}

/// proto3 int32 from a varint (negative values are sign-extended to 64 bits on the wire).
@inline(__always) func int32(_ v: UInt64) -> Int32 { Int32(truncatingIfNeeded: Int64(bitPattern: v)) }

public enum TestMessages {
    /// SimpleRequest.response_size (field 2).
    public static func responseSize(ofSimpleRequest bytes: [UInt8]) throws -> Int32 {
        var r = ProtoReader(bytes)
        var size: Int32 = 0
        while let (field, value) = try r.next() {
            if field == 2, case .varint(let v) = value { size = int32(v) }
        }
        return size
    }

    /// StreamingOutputCallRequest.response_parameters[*].size (field 2, then field 1).
    public static func responseSizes(ofStreamingOutputCallRequest bytes: [UInt8]) throws -> [Int32] {
        var r = ProtoReader(bytes)
        var sizes: [Int32] = []
        while let (field, value) = try r.next() {
            guard field == 2, case .bytes(let sub) = value else { continue }
            var p = ProtoReader(sub)
            var size: Int32 = 0
            while let (f, v) = try p.next() {
                if f == 1, case .varint(let x) = v { size = int32(x) }
            }
            sizes.append(size)
        }
        return sizes
    }

    static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }

    static func varintSize(_ value: UInt64) -> Int {
        var v = value, n = 1
        while v >= 0x80 { v >>= 7; n += 1 }
        return n
    }

    /// SimpleResponse / StreamingOutputCallResponse: { payload = 1 { body = 2: `size` zero bytes } }.
    /// Both responses share this encoding (field 1 is the Payload in each).
    public static func payloadResponse(size: Int) -> [UInt8] {
        if size == 0 {
            return [0x0a, 0x00]  // payload present, empty (as a set message field is encoded)
        }
        let inner = 1 + varintSize(UInt64(size)) + size
        var out: [UInt8] = []
        out.reserveCapacity(1 + varintSize(UInt64(inner)) + inner)
        out.append(0x0a); appendVarint(UInt64(inner), to: &out)
        out.append(0x12); appendVarint(UInt64(size), to: &out)
        out.append(contentsOf: repeatElement(0, count: size))
        return out
    }

    /// SimpleRequest { response_size = 2 }.
    public static func simpleRequest(responseSize: Int) -> [UInt8] {
        var out: [UInt8] = []
        if responseSize != 0 { out.append(0x10); appendVarint(UInt64(responseSize), to: &out) }
        return out
    }

    /// StreamingOutputCallRequest { response_parameters = 2 { size = 1 } x count }.
    public static func streamingOutputCallRequest(count: Int, size: Int) -> [UInt8] {
        var param: [UInt8] = [0x08]; appendVarint(UInt64(size), to: &param)
        var out: [UInt8] = []
        for _ in 0 ..< count {
            out.append(0x12); appendVarint(UInt64(param.count), to: &out); out.append(contentsOf: param)
        }
        return out
    }

    /// Length of Payload.body inside a payload response (field 1 -> field 2), for checking.
    public static func bodyLength(ofPayloadResponse bytes: [UInt8]) throws -> Int {
        var r = ProtoReader(bytes)
        var n = 0
        while let (field, value) = try r.next() {
            guard field == 1, case .bytes(let payload) = value else { continue }
            var p = ProtoReader(payload)
            while let (f, v) = try p.next() {
                if f == 2, case .bytes(let body) = v { n = body.count }
            }
        }
        return n
    }

    /// A gRPC length-prefixed message (uncompressed): the body h2load sends.
    public static func grpcFrame(_ message: [UInt8]) -> [UInt8] {
        let n = UInt32(message.count)
        return [0, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)] + message
    }
}

/// Writes to standard error (fd 2) without touching the C `stderr` global.
public func eprint(_ text: String) {
    var text = text + "\n"
    text.withUTF8 { buf in
        var rest = UnsafeRawBufferPointer(buf)
        while !rest.isEmpty {
            let n = write(2, rest.baseAddress, rest.count)
            if n <= 0 { return }
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
        }
    }
}
