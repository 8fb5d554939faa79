import RPCCore

/// Metadata ⇄ HTTP/2 header fields; `-bin` values travel base64-encoded.
enum MetadataCoding {
    static func headers(from metadata: Metadata) -> [(String, String)] {
        metadata.compactMap { entry in
            if Metadata.isReserved(entry.key) { return nil }
            switch entry.value {
            case .string(let s): return (entry.key, s)
            case .binary(let b): return (entry.key, Base64.encode(b))
            }
        }
    }

    /// Custom metadata among received headers; malformed base64 in a `-bin` key is dropped.
    static func metadata(from headers: [(String, String)]) -> Metadata {
        var m = Metadata()
        for (name, value) in headers where !Metadata.isReserved(name) {
            if name.hasSuffix("-bin") {
                // Several values of one -bin key may arrive comma-joined.
                for part in value.split(separator: ",") {
                    if let bytes = Base64.decode(part.trimmingSpaces) { m.add(name, binary: bytes) }
                }
            } else {
                m.add(name, value)
            }
        }
        return m
    }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}

/// Base64 as gRPC uses it: encoded without padding is fine to send; both padded and
/// unpadded are accepted.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let reverse: [UInt8] = {
        var t = [UInt8](repeating: 0xff, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        t[Int(UInt8(ascii: "-"))] = 62
        t[Int(UInt8(ascii: "_"))] = 63
        return t
    }()

    static func encode(_ bytes: [UInt8], padded: Bool = true) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(n >> 18)], alphabet[Int((n >> 12) & 63)], alphabet[Int((n >> 6) & 63)], alphabet[Int(n & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [alphabet[Int(n >> 18)], alphabet[Int((n >> 12) & 63)]]
            if padded { out += [UInt8(ascii: "="), UInt8(ascii: "=")] }
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(n >> 18)], alphabet[Int((n >> 12) & 63)], alphabet[Int((n >> 6) & 63)]]
            if padded { out.append(UInt8(ascii: "=")) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var out = [UInt8]()
        var acc: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            if c == UInt8(ascii: "=") { break }
            let v = reverse[Int(c)]
            if v == 0xff { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((acc >> UInt32(bits)) & 0xff))
            }
        }
        return out
    }
}
