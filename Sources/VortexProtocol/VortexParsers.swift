/// What a parent reads: requests, fed in whatever chunks TCP delivers. A header whose length
/// cannot be a request's is refused at once, before its value is waited for.
public struct VortexRequestParser: Sendable {
    public enum Request: Equatable, Sendable {
        case downloadPiece(DownloadPieceRequest)
        case close
        /// A tag this server does not serve (in-memory cache pieces, reserved);
        /// the value has been skipped, so the connection can go on.
        case unsupported(VortexTag)
    }

    /// Values of other tags are skipped up to this size; larger ones end the connection.
    public static let maxSkippedValue = 64 << 10
    private var buffer: [UInt8] = []

    public init() {}

    /// Appends `bytes` and returns every request now complete.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(VortexDecodingError) -> [Request] {
        buffer += bytes
        var out: [Request] = []
        while buffer.count >= VortexHeader.size {
            guard let header = VortexHeader(buffer[0..<VortexHeader.size]) else { break }
            let length = Int(header.length)
            switch header.tag {
            case .downloadPiece, .downloadPersistentPiece, .downloadPersistentCachePiece:
                guard length == DownloadPieceRequest.valueSize else {
                    throw .oversized("a download-piece value is \(DownloadPieceRequest.valueSize) bytes; the header says \(length)")
                }
            case .close:
                guard length == 0 else { throw .invalid("a close packet has no value; the header says \(length) bytes") }
            case .pieceContent, .persistentPieceContent, .persistentCachePieceContent, .error:
                throw .invalid("a \(header.tag) packet is a parent's answer, not a request")
            case .other:
                guard length <= Self.maxSkippedValue else { throw .oversized("\(length) bytes of value for tag \(header.tag.rawValue)") }
            }
            guard buffer.count >= VortexHeader.size + length else { break }
            let value = buffer[VortexHeader.size..<VortexHeader.size + length]
            switch header.tag {
            case .downloadPiece: out.append(.downloadPiece(try DownloadPieceRequest(value: value)))
            case .downloadPersistentPiece: out.append(.downloadPiece(try DownloadPieceRequest(value: value, kind: .persistentTask)))
            case .downloadPersistentCachePiece: out.append(.downloadPiece(try DownloadPieceRequest(value: value, kind: .persistentCacheTask)))
            case .close: out.append(.close)
            default: out.append(.unsupported(header.tag))
            }
            buffer.removeFirst(VortexHeader.size + length)
        }
        return out
    }

    /// Bytes of a request begun but not finished (at end of stream: a truncated packet).
    public var pendingBytes: Int { buffer.count }
}

/// What a child reads after asking for a piece: a piece (metadata, then its bytes), an
/// error packet, or a close. Lengths are checked against limits before anything is
/// buffered, so a lying or broken parent cannot make the child hold gigabytes.
public struct VortexResponseParser: Sendable {
    public enum Response: Equatable, Sendable {
        case piece(PieceContentMetadata, [UInt8])
        /// Only when content is not gathered: the piece's metadata, and the first bytes of
        /// its content that came with it (perhaps all of it, perhaps more). The rest of the
        /// content is the next `metadata.length - leftover.count` bytes on the connection.
        case pieceHead(PieceContentMetadata, leftover: [UInt8])
        case error(VortexErrorPacket)
        case close
    }

    public static let maxValue = 64 << 10

    private enum State: Sendable {
        case header
        case value(VortexHeader)
        case content(PieceContentMetadata)
    }

    private var state = State.header
    private var buffer: [UInt8] = []
    private var content: [UInt8] = []
    private let maxContent: UInt64
    private let kind: VortexPieceKind
    private let gathersContent: Bool

    /// `maxContent`: the largest piece accepted (Dragonfly's pieces are at most 64 MiB);
    /// `kind`: the kind of piece asked for, whose content tag alone is an answer;
    /// `gathersContent`: false to stop at a piece's metadata (`.pieceHead`) and leave its
    /// content to the caller, who can store it as it arrives.
    public init(maxContent: UInt64 = 1 << 30, kind: VortexPieceKind = .task, gathersContent: Bool = true) {
        self.maxContent = maxContent
        self.kind = kind
        self.gathersContent = gathersContent
    }

    /// Appends `bytes`; returns the response once it is complete. Bytes past it are kept.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(VortexDecodingError) -> Response? {
        if case .content = state { content += bytes } else { buffer += bytes }
        while true {
            switch state {
            case .header:
                guard buffer.count >= VortexHeader.size, let header = VortexHeader(buffer[0..<VortexHeader.size]) else { return nil }
                buffer.removeFirst(VortexHeader.size)
                switch header.tag {
                case .pieceContent, .persistentPieceContent, .persistentCachePieceContent, .error:
                    guard header.tag == .error || header.tag == kind.contentTag else {
                        throw .invalid("tag \(header.tag.rawValue) answers a request for another kind of piece")
                    }
                    guard header.length <= Self.maxValue else {
                        throw .oversized("\(header.length) bytes of \(header.tag) value (at most \(Self.maxValue))")
                    }
                case .close:
                    guard header.length == 0 else { throw .invalid("a close packet has no value; the header says \(header.length) bytes") }
                    return .close
                case .downloadPiece, .downloadPersistentPiece, .downloadPersistentCachePiece, .other:
                    throw .invalid("tag \(header.tag.rawValue) is not an answer to a download-piece request")
                }
                state = .value(header)
            case .value(let header):
                let length = Int(header.length)
                guard buffer.count >= length else { return nil }
                let value = buffer[0..<length]
                if header.tag == .error {
                    let packet = try VortexErrorPacket(value: value)
                    buffer.removeFirst(length)
                    state = .header
                    return .error(packet)
                }
                let metadata = try PieceContentMetadata(value: value)
                guard metadata.length <= maxContent else {
                    throw .oversized("a piece of \(metadata.length) bytes (at most \(maxContent))")
                }
                guard gathersContent else {
                    let leftover = Array(buffer[length...])
                    buffer = []
                    state = .header
                    return .pieceHead(metadata, leftover: leftover)
                }
                content = Array(buffer[length...])
                buffer = []
                content.reserveCapacity(Int(metadata.length))
                state = .content(metadata)
            case .content(let metadata):
                let length = Int(metadata.length)
                guard content.count >= length else { return nil }
                buffer = Array(content[length...])
                let piece = content.count == length ? content : Array(content[0..<length])
                content = []
                state = .header
                return .piece(metadata, piece)
            }
        }
    }

    /// True when a response was begun but not finished; at end of stream, a truncation.
    public var isMidResponse: Bool {
        if case .header = state { return !buffer.isEmpty }
        return true
    }

    /// Where the parser stopped, for the error when the stream ends early.
    public var progress: String {
        switch state {
        case .header: "\(buffer.count) of \(VortexHeader.size) header bytes"
        case .value(let h): "\(buffer.count) of \(h.length) value bytes"
        case .content(let m): "\(content.count) of \(m.length) piece bytes"
        }
    }
}
