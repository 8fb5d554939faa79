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
            var parser = VortexResponseParser(maxContent: maxPiece, kind: kind)
            for try await chunk in inbound {
                let response: VortexResponseParser.Response?
                do { response = try parser.feed(chunk.readableBytesView) } catch let e as VortexDecodingError { throw VortexClientError.protocolError(e) }
                switch response {
                case nil:
                    continue
                case .error(let packet):
                    throw VortexClientError.refused(packet)
                case .close:
                    throw VortexClientError.closedEarly("a close packet instead of piece \(number)")
                case .piece(let metadata, let content):
                    guard metadata.number == number else {
                        throw VortexClientError.unexpected("asked for piece \(number), got piece \(metadata.number)")
                    }
                    if let expectedLength, metadata.length != expectedLength {
                        throw VortexClientError.unexpected("piece \(number) is \(expectedLength) bytes, the parent sent \(metadata.length)")
                    }
                    outbound.finish()
                    return VortexPiece(metadata: metadata, content: content)
                }
            }
            throw VortexClientError.closedEarly(parser.progress)
        }
    }
}
