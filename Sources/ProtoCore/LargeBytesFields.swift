internal import CProtobufC

/// Piece content travels in one `bytes` field of several MiB. Through protobuf-c it would be
/// copied twice each way (into the C tree and into the packed buffer; out of the wire into
/// a malloc'd copy and again into a Swift array). Such a field, when it is a plain proto3
/// singular `bytes` field of the top-level message, goes around protobuf-c instead: it is
/// appended after the packed rest on encoding, and cut out of the wire bytes before
/// unpacking. Protobuf allows fields in any order, so the wire format is unchanged.
enum LargeBytesFields {
    /// Fields smaller than this go through protobuf-c as usual.
    static let threshold = 64 << 10

    /// Whether `field` may bypass protobuf-c: singular proto3 bytes, no oneof, no presence
    /// flag (its only state is its value).
    static func qualifies(_ field: UnsafePointer<ProtobufCFieldDescriptor>) -> Bool {
        ProtoField(descriptor: field).hasImplicitPresence && field.pointee.type == PROTOBUF_C_TYPE_BYTES
    }

    /// The large fields set while encoding one message, in the order they were set.
    final class Sink {
        var fields: [(number: UInt32, bytes: [UInt8])] = []
    }

    /// The packed rest followed by each large field as tag, length and bytes (one copy of them).
    static func append(_ fields: [(number: UInt32, bytes: [UInt8])], after packedCount: Int,
                       pack: (UnsafeMutablePointer<UInt8>) -> Int) -> [UInt8] {
        var total = packedCount
        for f in fields { total += varintLength(UInt64(f.number) << 3 | 2) + varintLength(UInt64(f.bytes.count)) + f.bytes.count }
        return [UInt8](unsafeUninitializedCapacity: total) { out, initialized in
            guard let base = out.baseAddress else { initialized = 0; return }
            var at = packedCount > 0 ? pack(base) : 0
            for f in fields {
                at = writeVarint(UInt64(f.number) << 3 | 2, to: base, at: at)
                at = writeVarint(UInt64(f.bytes.count), to: base, at: at)
                f.bytes.withUnsafeBytes { src in
                    if let s = src.baseAddress { (base + at).update(from: s.assumingMemoryBound(to: UInt8.self), count: src.count) }
                }
                at += f.bytes.count
            }
            initialized = at
        }
    }

    /// Splits wire bytes into what protobuf-c unpacks and the large qualifying fields.
    /// Without such a field (or when the bytes do not parse, for protobuf-c to reject as
    /// usual) the bytes come back whole. A field number that occurs more than once is left
    /// to protobuf-c (the last occurrence wins there).
    ///
    /// One large field at the very end, as our encoder writes it, keeps the wire's storage:
    /// the bytes before it are removed in place, so no second buffer is allocated (when the
    /// caller hands over its only reference). That removal still shifts the field's bytes
    /// to the front of the array: a memmove of the content (about 2 % of a piece-stream
    /// child's CPU, BENCHMARKS.md session 13), which `InPlaceBytes` avoids by leaving the
    /// field where it is. Others are copied once into arrays of their own.
    static func split(_ bytes: consuming [UInt8], for message: UnsafePointer<ProtobufCMessageDescriptor>)
        -> (rest: [UInt8], fields: [UInt32: [UInt8]]) {
        let chosen = largeFields(in: bytes, for: message)
        guard !chosen.isEmpty else { return (bytes, [:]) }
        if chosen.count == 1, let last = chosen.first, last.data.upperBound == bytes.count {
            let rest = Array(bytes[0..<last.start])
            var field = consume bytes
            field.removeSubrange(0..<last.data.lowerBound)
            return (rest, [last.number: field])
        }
        var rest: [UInt8] = []
        rest.reserveCapacity(bytes.count - chosen.reduce(0) { $0 + $1.data.count })
        var fields: [UInt32: [UInt8]] = [:]
        var from = 0
        for c in chosen {
            rest.append(contentsOf: bytes[from..<c.start])
            fields[c.number] = Array(bytes[c.data])
            from = c.data.upperBound
        }
        rest.append(contentsOf: bytes[from...])
        return (rest, fields)
    }

    /// Where the large qualifying fields are in `wire`: each field's key offset and its
    /// data's range, in wire order. Empty when there are none, when the bytes do not parse
    /// (protobuf-c rejects them then), and for a field number that occurs more than once.
    static func largeFields(in bytes: [UInt8], for message: UnsafePointer<ProtobufCMessageDescriptor>)
        -> [(number: UInt32, start: Int, data: Range<Int>)] {
        guard bytes.count >= threshold else { return [] }
        return bytes.withUnsafeBufferPointer { wire -> [(number: UInt32, start: Int, data: Range<Int>)] in
            var candidates: [(number: UInt32, start: Int, data: Range<Int>)] = []
            var occurrences: [UInt32: Int] = [:]
            var i = 0
            while i < wire.count {
                let start = i
                guard let key = readVarint(wire, &i), key >> 3 > 0, key >> 3 <= 0x1fff_ffff else { return [] }
                let number = UInt32(key >> 3)
                switch key & 7 {
                case 0:
                    guard readVarint(wire, &i) != nil else { return [] }
                case 1:
                    guard wire.count - i >= 8 else { return [] }
                    i += 8
                case 5:
                    guard wire.count - i >= 4 else { return [] }
                    i += 4
                case 2:
                    guard let length = readVarint(wire, &i), length <= UInt64(wire.count - i) else { return [] }
                    let end = i + Int(length)
                    if length >= UInt64(threshold) { candidates.append((number, start, i..<end)) }
                    i = end
                default:
                    return []
                }
                occurrences[number, default: 0] += 1
            }
            return candidates.filter { c in
                guard occurrences[c.number] == 1, let field = protobuf_c_message_descriptor_get_field(message, c.number) else { return false }
                return qualifies(field)
            }
        }
    }

    private static func varintLength(_ value: UInt64) -> Int {
        var v = value, n = 1
        while v >= 0x80 { v >>= 7; n += 1 }
        return n
    }

    private static func writeVarint(_ value: UInt64, to base: UnsafeMutablePointer<UInt8>, at start: Int) -> Int {
        var v = value, at = start
        while v >= 0x80 {
            base[at] = UInt8(truncatingIfNeeded: v) | 0x80
            v >>= 7
            at += 1
        }
        base[at] = UInt8(v)
        return at + 1
    }

    /// A varint of at most 10 bytes inside `wire`; nil when it runs off the end or is longer.
    private static func readVarint(_ wire: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while i < wire.count, shift < 70 {
            let byte = wire[i]
            i += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }
}

extension ProtoMessage {
    /// This message's wire bytes followed by the key and length of one more `bytes` field
    /// (`number`), whose `length` bytes the caller puts right after. A piece's content can
    /// then be read from disk straight into the buffer that carries the message. The
    /// message itself must leave that field empty.
    public func serializedBytes(beforeBytesField number: UInt32, length: Int) -> [UInt8] {
        var wire = serializedBytes()
        LargeBytesFields.appendKey(of: number, length: length, to: &wire)
        return wire
    }
}

extension LargeBytesFields {
    static func appendKey(of number: UInt32, length: Int, to wire: inout [UInt8]) {
        for value in [UInt64(number) << 3 | 2, UInt64(max(0, length))] {
            var v = value
            while v >= 0x80 {
                wire.append(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
            wire.append(UInt8(v))
        }
    }
}
