/// One byte range of a known-length body, from a `Range: bytes=…` header.
public struct ByteRange: Sendable, Equatable {
    /// Inclusive bounds.
    public var first: UInt64
    public var last: UInt64
    public var count: UInt64 { last - first + 1 }

    public init(first: UInt64, last: UInt64) {
        self.first = first
        self.last = last
    }

    public enum Parsed: Equatable, Sendable {
        /// No Range header, or one we answer with the whole body (several ranges, other units).
        case whole
        case range(ByteRange)
        /// Starts past the end: 416.
        case unsatisfiable
    }

    public static func parse(_ header: String?, length: UInt64) -> Parsed {
        guard let header, header.hasPrefix("bytes="), !header.contains(",") else { return .whole }
        let spec = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .whole }
        if parts[0].isEmpty {
            // Suffix: the last n bytes.
            guard let n = UInt64(parts[1]) else { return .whole }
            guard n > 0, length > 0 else { return .unsatisfiable }
            return .range(ByteRange(first: length - min(n, length), last: length - 1))
        }
        guard let first = UInt64(parts[0]) else { return .whole }
        guard first < length else { return .unsatisfiable }
        let last = parts[1].isEmpty ? length - 1 : (UInt64(parts[1]).map { min($0, length - 1) } ?? UInt64.max)
        guard last != UInt64.max, last >= first else { return .whole }
        return .range(ByteRange(first: first, last: last))
    }
}
