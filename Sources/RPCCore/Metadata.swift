/// gRPC custom metadata: ordered, case-insensitive keys (stored lower-cased), and binary
/// values for keys ending in `-bin` (base64 on the wire).
public struct Metadata: Sendable, Equatable, Sequence {
    public enum Value: Sendable, Equatable {
        case string(String)
        case binary([UInt8])
    }

    public private(set) var entries: [(key: String, value: Value)] = []

    public init() {}
    public init(_ pairs: [(String, String)]) {
        for (k, v) in pairs { add(k, v) }
    }

    public static func == (lhs: Metadata, rhs: Metadata) -> Bool {
        lhs.entries.count == rhs.entries.count
            && zip(lhs.entries, rhs.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public mutating func add(_ key: String, _ value: String) {
        entries.append((key.lowercased(), .string(value)))
    }
    public mutating func add(_ key: String, binary: [UInt8]) {
        entries.append((key.lowercased(), .binary(binary)))
    }
    public mutating func add(_ key: String, value: Value) {
        entries.append((key.lowercased(), value))
    }

    public subscript(_ key: String) -> String? {
        let k = key.lowercased()
        for e in entries where e.key == k {
            if case .string(let s) = e.value { return s }
        }
        return nil
    }
    public func binary(_ key: String) -> [UInt8]? {
        let k = key.lowercased()
        for e in entries where e.key == k {
            if case .binary(let b) = e.value { return b }
        }
        return nil
    }
    public func values(_ key: String) -> [Value] {
        let k = key.lowercased()
        return entries.filter { $0.key == k }.map(\.value)
    }
    public var isEmpty: Bool { entries.isEmpty }

    public func makeIterator() -> IndexingIterator<[(key: String, value: Value)]> {
        entries.makeIterator()
    }

    /// Headers the transport owns; applications may not set or see them as metadata.
    public static func isReserved(_ key: String) -> Bool {
        key.hasPrefix(":") || key == "content-type" || key == "te" || key == "grpc-status"
            || key == "grpc-message" || key == "grpc-timeout" || key == "grpc-encoding"
            || key == "grpc-accept-encoding" || key == "grpc-status-details-bin"
            || key == "content-length" || key == "user-agent"
    }
}
