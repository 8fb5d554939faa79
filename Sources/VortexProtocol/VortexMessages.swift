/// Tag 0 (tag 4 for a persistent cache task): the piece a child wants — the task id as its
/// 64 hex characters, then the piece number as a big-endian u32; 68 bytes, no more and no less.
public struct DownloadPieceRequest: Equatable, Sendable {
    public static let taskIDSize = 64
    public static let valueSize = taskIDSize + 4
    public var taskID: String
    public var pieceNumber: UInt32
    public var kind: VortexPieceKind

    public init(taskID: String, pieceNumber: UInt32, kind: VortexPieceKind = .task) {
        self.taskID = taskID
        self.pieceNumber = pieceNumber
        self.kind = kind
    }

    /// The whole packet: header and value. The task id must be 64 ASCII characters.
    public func packet(id: UInt8 = .random(in: 0...255)) throws(VortexDecodingError) -> [UInt8] {
        let task = Array(taskID.utf8)
        guard task.count == Self.taskIDSize else {
            throw .invalid("a task id is \(Self.taskIDSize) characters, not \(task.count)")
        }
        var out = VortexHeader(id: id, tag: kind.requestTag, length: UInt32(Self.valueSize)).bytes
        out += task
        out.appendBigEndian(pieceNumber)
        return out
    }

    public init(value: some Collection<UInt8>, kind: VortexPieceKind = .task) throws(VortexDecodingError) {
        self.kind = kind
        guard value.count == Self.valueSize else {
            throw .invalid("a download-piece value is \(Self.valueSize) bytes, not \(value.count)")
        }
        let b = Array(value)
        let task = b[0..<Self.taskIDSize]
        // Task ids are lowercase hex; anything else cannot name a task and is refused here.
        guard task.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw .invalid("the task id is not 64 lowercase hex characters")
        }
        taskID = String(decoding: task, as: UTF8.self)
        pieceNumber = UInt32(bigEndianBytes: b[Self.taskIDSize...])
    }
}

/// Tag 1's value: what the piece is. On the wire: the metadata's length (u32), then number
/// (u32), offset (u64), length (u64), digest (u32 length + UTF-8), parent id (u32 length +
/// UTF-8), traffic type (u8), cost in whole seconds (u64) and creation time in Unix seconds
/// (i64), all big-endian. The piece's `length` bytes follow the packet.
public struct PieceContentMetadata: Equatable, Sendable {
    /// common.v2.TrafficType: a parent serving a piece says REMOTE_PEER.
    public static let remotePeer: UInt8 = 1

    public var number: UInt32
    public var offset: UInt64
    public var length: UInt64
    /// `crc32:<decimal>` of the piece.
    public var digest: String
    public var parentID: String
    public var trafficType: UInt8
    public var costSeconds: UInt64
    public var createdAt: Int64

    public init(number: UInt32, offset: UInt64, length: UInt64, digest: String, parentID: String = "",
                trafficType: UInt8 = Self.remotePeer, costSeconds: UInt64 = 0, createdAt: Int64 = 0) {
        self.number = number
        self.offset = offset
        self.length = length
        self.digest = digest
        self.parentID = parentID
        self.trafficType = trafficType
        self.costSeconds = costSeconds
        self.createdAt = createdAt
    }

    /// The packet's value: the metadata preceded by its length.
    public var value: [UInt8] {
        var m: [UInt8] = []
        m.appendBigEndian(number)
        m.appendBigEndian(offset)
        m.appendBigEndian(length)
        m.appendBigEndian(UInt32(digest.utf8.count))
        m += digest.utf8
        m.appendBigEndian(UInt32(parentID.utf8.count))
        m += parentID.utf8
        m.append(trafficType)
        m.appendBigEndian(costSeconds)
        m.appendBigEndian(createdAt)
        var out: [UInt8] = []
        out.appendBigEndian(UInt32(m.count))
        return out + m
    }

    /// Header and value; the caller sends the piece's bytes after them.
    public func packetHead(id: UInt8 = .random(in: 0...255), kind: VortexPieceKind = .task) -> [UInt8] {
        let v = value
        return VortexHeader(id: id, tag: kind.contentTag, length: UInt32(v.count)).bytes + v
    }

    public init(value: some Collection<UInt8>) throws(VortexDecodingError) {
        var r = ByteReader(Array(value))
        let metadataLength = try r.u32("metadata length")
        guard Int(metadataLength) == r.remaining else {
            throw .invalid("metadata length \(metadataLength) but \(r.remaining) bytes follow it")
        }
        number = try r.u32("piece number")
        offset = try r.u64("offset")
        length = try r.u64("length")
        digest = try r.string("digest")
        parentID = try r.string("parent id")
        trafficType = try r.u8("traffic type")
        costSeconds = try r.u64("cost")
        createdAt = Int64(bitPattern: try r.u64("created at"))
        guard r.remaining == 0 else { throw .invalid("\(r.remaining) bytes after the metadata") }
    }
}

/// Tag 255: a code byte, then a UTF-8 message filling the rest of the value.
public struct VortexErrorPacket: Equatable, Sendable, Error {
    public enum Code: Equatable, Sendable {
        case unknown, invalidArgument, notFound, `internal`
        case reserved(UInt8)

        public init(rawValue: UInt8) {
            switch rawValue {
            case 0: self = .unknown
            case 1: self = .invalidArgument
            case 2: self = .notFound
            case 3: self = .internal
            default: self = .reserved(rawValue)
            }
        }

        public var rawValue: UInt8 {
            switch self {
            case .unknown: 0
            case .invalidArgument: 1
            case .notFound: 2
            case .internal: 3
            case .reserved(let raw): raw
            }
        }
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public func packet(id: UInt8 = .random(in: 0...255)) -> [UInt8] {
        let text = Array(message.utf8)
        return VortexHeader(id: id, tag: .error, length: UInt32(1 + text.count)).bytes + [code.rawValue] + text
    }

    public init(value: some Collection<UInt8>) throws(VortexDecodingError) {
        guard let first = value.first else { throw .invalid("an error packet needs at least its code byte") }
        code = Code(rawValue: first)
        message = String(decoding: value.dropFirst(), as: UTF8.self)
    }
}

/// Tag 254: nothing more will be asked on this connection.
public enum VortexClose {
    public static func packet(id: UInt8 = .random(in: 0...255)) -> [UInt8] {
        VortexHeader(id: id, tag: .close, length: 0).bytes
    }
}

/// Big-endian fields read off a value, each failure naming the field.
struct ByteReader {
    private let bytes: [UInt8]
    private var at = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var remaining: Int { bytes.count - at }

    mutating func take(_ n: Int, _ field: String) throws(VortexDecodingError) -> ArraySlice<UInt8> {
        guard n <= remaining else { throw .invalid("\(field) runs past the end of the value") }
        defer { at += n }
        return bytes[at..<at + n]
    }

    mutating func u8(_ field: String) throws(VortexDecodingError) -> UInt8 { try take(1, field).first ?? 0 }
    mutating func u32(_ field: String) throws(VortexDecodingError) -> UInt32 { UInt32(bigEndianBytes: try take(4, field)) }
    mutating func u64(_ field: String) throws(VortexDecodingError) -> UInt64 { UInt64(bigEndianBytes: try take(8, field)) }

    mutating func string(_ field: String) throws(VortexDecodingError) -> String {
        let n = try u32("\(field) length")
        return String(decoding: try take(Int(n), field), as: UTF8.self)
    }
}
