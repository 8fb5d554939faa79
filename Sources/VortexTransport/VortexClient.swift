import NIOCore
import NIOPosix
import VortexProtocol

/// Why a Vortex download failed: the parent's error packet, or a broken exchange.
public enum VortexClientError: Error, CustomStringConvertible, Sendable {
    case refused(VortexErrorPacket)
    case protocolError(VortexDecodingError)
    case closedEarly(String)
    case unexpected(String)

    public var description: String {
        switch self {
        case .refused(let e): "parent refused: \(e.code) \(e.message)"
        case .protocolError(let e): "\(e)"
        case .closedEarly(let at): "parent closed the connection after \(at)"
        case .unexpected(let what): what
        }
    }
}

/// Fetches pieces over Vortex: one connection per piece, as Dragonfly's Rust client does.
public struct VortexClient: Sendable {
    private let group: any EventLoopGroup
    private let maxPiece: UInt64

    public init(maxPiece: UInt64 = 1 << 30, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.group = group
        self.maxPiece = maxPiece
    }

    /// The piece, its metadata checked against what was asked (number, and `length` when
    /// known); the digest is the caller's to check against the bytes.
    public func downloadPiece(host: String, port: Int, taskID: String, number: UInt32, kind: VortexPieceKind = .task,
                              expectedLength: UInt64? = nil) async throws -> VortexPiece {
        var content: [UInt8] = []
        let metadata = try await downloadPiece(host: host, port: port, taskID: taskID, number: number, kind: kind,
                                               expectedLength: expectedLength) { metadata, chunk in
            if content.isEmpty { content.reserveCapacity(Int(metadata.length)) }
            content.append(contentsOf: chunk.readableBytesView)
        }
        return VortexPiece(metadata: metadata, content: content)
    }

    /// Fetches a piece and hands its content to `receive` slice by slice, in order, as it
    /// is read from the socket (so it can be stored as it comes, never held whole). Returns
    /// the piece's metadata once `receive` has had all `metadata.length` bytes; the digest
    /// is the caller's to check.
    public func downloadPiece(host: String, port: Int, taskID: String, number: UInt32, kind: VortexPieceKind = .task,
                              expectedLength: UInt64? = nil,
                              receive: (PieceContentMetadata, ByteBuffer) async throws -> Void) async throws -> PieceContentMetadata {
        let request = try DownloadPieceRequest(taskID: taskID, pieceNumber: number, kind: kind).packet()
        let channel = try await ClientBootstrap(group: group)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let maxPiece = maxPiece
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: request))
            var parser = VortexResponseParser(maxContent: maxPiece, kind: kind, gathersContent: false)
            var iterator = inbound.makeAsyncIterator()
            var head: (PieceContentMetadata, [UInt8])?
            while head == nil, let chunk = try await iterator.next() {
                let response: VortexResponseParser.Response?
                do { response = try parser.feed(chunk.readableBytesView) } catch let e as VortexDecodingError { throw VortexClientError.protocolError(e) }
                switch response {
                case nil: continue
                case .error(let packet): throw VortexClientError.refused(packet)
                case .close: throw VortexClientError.closedEarly("a close packet instead of piece \(number)")
                case .piece(let metadata, let content): head = (metadata, content)
                case .pieceHead(let metadata, let leftover): head = (metadata, leftover)
                }
            }
            guard let (metadata, leftover) = head else { throw VortexClientError.closedEarly(parser.progress) }
            guard metadata.number == number else {
                throw VortexClientError.unexpected("asked for piece \(number), got piece \(metadata.number)")
            }
            if let expectedLength, metadata.length != expectedLength {
                throw VortexClientError.unexpected("piece \(number) is \(expectedLength) bytes, the parent sent \(metadata.length)")
            }
            var remaining = metadata.length
            if !leftover.isEmpty {
                let n = Int(min(UInt64(leftover.count), remaining))
                try await receive(metadata, ByteBuffer(bytes: leftover.prefix(n)))
                remaining -= UInt64(n)
            }
            while remaining > 0 {
                guard var chunk = try await iterator.next() else {
                    throw VortexClientError.closedEarly("\(metadata.length - remaining) of \(metadata.length) bytes of piece \(number)")
                }
                let n = min(chunk.readableBytes, Int(clamping: remaining))
                guard let slice = chunk.readSlice(length: n) else { continue }
                try await receive(metadata, slice)
                remaining -= UInt64(n)
            }
            outbound.finish()
            return metadata
        }
    }
}
