/// Low-level protobuf wire format pieces used by the dynamic codec.
struct WireWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func tag(_ number: Int, _ wireType: UInt64) { varint(UInt64(number) << 3 | wireType) }

    mutating func fixed32(_ v: UInt32) { for s in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8((v >> UInt32(s)) & 0xff)) } }
    mutating func fixed64(_ v: UInt64) { for s in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8((v >> UInt64(s)) & 0xff)) } }

    mutating func lengthDelimited(_ payload: [UInt8]) {
        varint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }
}

struct WireReader {
    let bytes: [UInt8]
    var i: Int
    let end: Int

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.i = 0
        self.end = bytes.count
    }

    var atEnd: Bool { i >= end }

    mutating func varint() throws(ProtoJSONError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while i < end {
            let b = bytes[i]
            i += 1
            if shift < 64 { result |= UInt64(b & 0x7f) << shift }
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 70 { break }
        }
        throw ProtoJSONError("malformed varint in response")
    }

    mutating func fixed32() throws(ProtoJSONError) -> UInt32 {
        guard i + 4 <= end else { throw ProtoJSONError("truncated fixed32") }
        var v: UInt32 = 0
        for k in 0..<4 { v |= UInt32(bytes[i + k]) << UInt32(8 * k) }
        i += 4
        return v
    }

    mutating func fixed64() throws(ProtoJSONError) -> UInt64 {
        guard i + 8 <= end else { throw ProtoJSONError("truncated fixed64") }
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(bytes[i + k]) << UInt64(8 * k) }
        i += 8
        return v
    }

    mutating func lengthDelimited() throws(ProtoJSONError) -> [UInt8] {
        let n = try varint()
        guard n <= UInt64(end - i) else { throw ProtoJSONError("truncated length-delimited field") }
        let out = Array(bytes[i..<(i + Int(n))])
        i += Int(n)
        return out
    }

    mutating func skip(_ wireType: UInt64) throws(ProtoJSONError) {
        switch wireType {
        case 0: _ = try varint()
        case 1: _ = try fixed64()
        case 2: _ = try lengthDelimited()
        case 5: _ = try fixed32()
        default: throw ProtoJSONError("unsupported wire type \(wireType)")
        }
    }
}
