import RPCCore
import ProtoCore

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

