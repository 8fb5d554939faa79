/// Vortex, the piece transport of Dragonfly's Rust dfdaemon (dragonflyoss/vortex-protocol):
/// every packet is a 6-byte header — a packet id, a tag, the value's length as a big-endian
/// u32 — and then the value. A piece-content packet is followed by the piece's bytes, which
/// its header does not count. Tags as vortex-protocol 0.1.5 numbers them: 0 and 1 a task's
/// piece, 2 and 3 a persistent task's, 4 and 5 a persistent cache task's (the same
/// layouts), 254 close, 255 error. The in-memory cache variants (6, 7) are read as `.other`
/// and refused.
public enum VortexTag: Equatable, Sendable {
    case downloadPiece
    case pieceContent
    case downloadPersistentPiece
    case persistentPieceContent
    case downloadPersistentCachePiece
    case persistentCachePieceContent
    case close
    case error
    case other(UInt8)

    public init(rawValue: UInt8) {
        switch rawValue {
        case 0: self = .downloadPiece
        case 1: self = .pieceContent
        case 2: self = .downloadPersistentPiece
        case 3: self = .persistentPieceContent
        case 4: self = .downloadPersistentCachePiece
        case 5: self = .persistentCachePieceContent
        case 254: self = .close
        case 255: self = .error
        default: self = .other(rawValue)
        }
    }

    public var rawValue: UInt8 {
        switch self {
        case .downloadPiece: 0
        case .pieceContent: 1
        case .downloadPersistentPiece: 2
        case .persistentPieceContent: 3
        case .downloadPersistentCachePiece: 4
        case .persistentCachePieceContent: 5
        case .close: 254
        case .error: 255
        case .other(let raw): raw
        }
    }
}

/// Which kind of task a piece belongs to; it picks the request and content tags.
public enum VortexPieceKind: Equatable, Sendable {
    case task
    case persistentTask
    case persistentCacheTask

    public var requestTag: VortexTag {
        switch self {
        case .task: .downloadPiece
        case .persistentTask: .downloadPersistentPiece
        case .persistentCacheTask: .downloadPersistentCachePiece
        }
    }

    public var contentTag: VortexTag {
        switch self {
        case .task: .pieceContent
        case .persistentTask: .persistentPieceContent
        case .persistentCacheTask: .persistentCachePieceContent
        }
    }
}

public struct VortexHeader: Equatable, Sendable {
    public static let size = 6
    /// Random per packet; nothing is matched on it (a reply carries an id of its own).
    public var id: UInt8
    public var tag: VortexTag
    /// The value's length in bytes (for piece content: the metadata's, not the piece's).
    public var length: UInt32

    public init(id: UInt8 = .random(in: 0...255), tag: VortexTag, length: UInt32) {
        self.id = id
        self.tag = tag
        self.length = length
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = [id, tag.rawValue]
        out.appendBigEndian(length)
        return out
    }

    /// Exactly six bytes, or nil.
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == Self.size else { return nil }
        let b = Array(bytes)
        self.init(id: b[0], tag: VortexTag(rawValue: b[1]), length: UInt32(bigEndianBytes: b[2..<6]))
    }
}

/// Why bytes are not a Vortex packet; each says what was wrong.
public enum VortexDecodingError: Error, Equatable, CustomStringConvertible, Sendable {
    case truncated(String)
    case oversized(String)
    case invalid(String)

    public var description: String {
        switch self {
        case .truncated(let what): "truncated Vortex packet: \(what)"
        case .oversized(let what): "oversized Vortex packet: \(what)"
        case .invalid(let what): "invalid Vortex packet: \(what)"
        }
    }
}

extension [UInt8] {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        var v = value.bigEndian
        Swift.withUnsafeBytes(of: &v) { append(contentsOf: $0) }
    }
}

extension FixedWidthInteger {
    /// From exactly `bitWidth / 8` big-endian bytes.
    init(bigEndianBytes bytes: some Collection<UInt8>) {
        var v: Self = 0
        for b in bytes { v = v << 8 | Self(b) }
        self = v
    }
}
