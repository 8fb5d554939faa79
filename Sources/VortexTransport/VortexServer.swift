import Logging
import NIOCore
import NIOPosix
import Locking
import VortexProtocol

/// One piece as a child receives it.
public struct VortexPiece: Sendable {
    public var metadata: PieceContentMetadata
    public var content: [UInt8]

    public init(metadata: PieceContentMetadata, content: [UInt8]) {
        self.metadata = metadata
        self.content = content
    }
}

/// One piece as a parent sends it: its bytes in memory, read a chunk at a time as they are
/// sent, or a region of a file the kernel sends from the page cache (`sendfile`) without
/// the bytes entering this process.
public struct VortexOutgoingPiece: Sendable {
    public enum Body: Sendable {
        case bytes(ByteBuffer)
        /// `length` bytes, `read(start, count)` at a time in chunks of `chunk`, the next read
        /// while one is sent: a connection holds two chunks, never the whole piece. `done`
        /// runs once the piece was sent, failed, or will not be sent, and no read is running.
        case reader(length: Int, chunk: Int, read: @Sendable (Int, Int) async throws -> ByteBuffer, done: @Sendable () -> Void)
        /// The server closes the handle once the region is written or the send fails.
        case file(NIOFileHandle, offset: Int, length: Int)
    }

    public var metadata: PieceContentMetadata
    public var body: Body
    /// Picks the content tag: 1, 3 for a persistent task's piece, 5 for a persistent cache task's.
    public var kind: VortexPieceKind

    public init(metadata: PieceContentMetadata, body: Body, kind: VortexPieceKind = .task) {
        self.metadata = metadata
        self.body = body
        self.kind = kind
    }

    var length: Int {
        switch body {
        case .bytes(let bytes): bytes.readableBytes
        case .reader(let length, _, _, _): length
        case .file(_, _, let length): length
        }
    }

    /// Closes a file body's handle; for when the piece will not be sent.
    func discard() {
        switch body {
        case .file(let handle, _, _): try? handle.close()
        case .reader(_, _, _, let done): done()
        case .bytes: break
        }
    }
}

/// Where the server's pieces come from. A thrown `VortexErrorPacket` is sent to the child
/// as it is; any other error is sent as an internal error with its description.
public protocol VortexPieceSource: Sendable {
    /// Called once per connection, before its first request is read; the returned value
    /// sees each piece this connection sends (`willSend`) and its end (`finish`), so the
    /// source can apply per-connection limits. A thrown `VortexErrorPacket` is the answer to
    /// the connection's first request, and the connection ends.
    /// `host` is the child's IP address.
    func openConnection(from host: String?) throws -> any VortexConnectionBudget
    /// `kind`: a task's piece (tag 0), a persistent task's (2) or a persistent cache task's (4).
    func piece(taskID: String, number: UInt32, kind: VortexPieceKind) async throws -> VortexOutgoingPiece
}

public protocol VortexConnectionBudget: Sendable {
    /// Waits until `bytes` may be sent, or throws to refuse the piece.
    func willSend(bytes: Int) async throws
    func finish()
}

/// A Vortex TCP listener. Each connection is read in a task of its own: requests are
/// answered in order (a piece's metadata and bytes, or an error packet) until the child
/// closes, sends a close packet, or sends bytes that are not a request, which get an
/// invalid-argument error packet and the end of the connection. Answers are written to the
/// channel directly and awaited, so a file region's handle is closed only once the kernel
/// has taken its bytes, and a slow child holds back only its own connection.
public final class VortexServer: Sendable {
    private let channel: any Channel
    public var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel) { self.channel = channel }

    /// What one client may make the server hold: every port a node opens to the cluster is
    /// a target for connection floods.
    public struct Limits: Sendable {
        /// A connection that neither sends nor receives for this long is closed; nil keeps it.
        public var idleTimeout: Duration?
        /// Connections from one address at once; one more is closed as soon as it is accepted.
        public var maxConnectionsPerIP: Int?

        public init(idleTimeout: Duration? = .seconds(300), maxConnectionsPerIP: Int? = 1024) {
            self.idleTimeout = idleTimeout
            self.maxConnectionsPerIP = maxConnectionsPerIP
        }
    }

    public static func start(host: String, port: Int, source: some VortexPieceSource, logger: Logger, limits: Limits = Limits(),
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> VortexServer {
        let perAddress = ConnectionsByAddress()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let address = channel.remoteAddress?.ipAddress ?? ""
                guard perAddress.admit(address, limit: limits.maxConnectionsPerIP) else {
                    logger.debug("Vortex: refusing a connection from \(address): \(limits.maxConnectionsPerIP ?? 0) already open")
                    return channel.eventLoop.makeFailedFuture(ConnectionRefused())
                }
                channel.closeFuture.whenComplete { _ in perAddress.release(address) }
                return channel.eventLoop.makeCompletedFuture {
                    if let idle = limits.idleTimeout {
                        let (nanos, overflow) = Int64(clamping: idle.components.seconds).multipliedReportingOverflow(by: 1_000_000_000)
                        let amount = TimeAmount.nanoseconds(overflow ? .max : nanos)
                        try channel.pipeline.syncOperations.addHandlers([IdleStateHandler(allTimeout: amount), CloseWhenIdle()])
                    }
                    let wrapped = try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    Task {
                        do {
                            try await wrapped.executeThenClose { inbound, _ in
                                try await serve(inbound, Replies(channel: channel), source: source, from: channel.remoteAddress?.ipAddress)
                            }
                        } catch {
                            logger.debug("Vortex connection from \(channel.remoteAddress?.description ?? "?") ended: \(error)")
                        }
                    }
                }
            }
        return VortexServer(channel: try await bootstrap.bind(host: host, port: port).get())
    }

    public func stop() async {
        try? await channel.close()
    }

    /// Writes answers through the whole pipeline and waits until each is written.
    struct Replies {
        let channel: any Channel

        func write(_ bytes: [UInt8]) async throws {
            try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
        }

        func write(_ piece: VortexOutgoingPiece) async throws {
            switch piece.body {
            case .bytes(let content):
                // The head goes first as a buffer of its own: the content is not copied behind it.
                channel.write(ByteBuffer(bytes: piece.metadata.packetHead(kind: piece.kind)), promise: nil)
                try await channel.writeAndFlush(content)
            case .reader(let length, let chunk, let read, let done):
                channel.write(ByteBuffer(bytes: piece.metadata.packetHead(kind: piece.kind)), promise: nil)
                try await sendReadAhead(length: length, chunk: max(1, chunk), read: read, done: done)
            case .file(let handle, let offset, let length):
                defer { try? handle.close() }
                channel.write(ByteBuffer(bytes: piece.metadata.packetHead(kind: piece.kind)), promise: nil)
                let region = FileRegion(fileHandle: handle, readerIndex: offset, endIndex: offset + length)
                try await channel.writeAndFlush(IOData.fileRegion(region))
            }
        }
    }

    private static func serve(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>, _ outbound: Replies,
                              source: some VortexPieceSource, from host: String?) async throws {
        let budget: any VortexConnectionBudget
        do {
            budget = try source.openConnection(from: host)
        } catch {
            let refusal = error as? VortexErrorPacket ?? VortexErrorPacket(code: .internal, message: "\(error)")
            // Answer the first request, so a client that writes before it reads sees why.
            for try await _ in inbound { break }
            try await outbound.write(refusal.packet())
            return
        }
        defer { budget.finish() }
        var parser = VortexRequestParser()
        for try await chunk in inbound {
            let requests: [VortexRequestParser.Request]
            do {
                requests = try parser.feed(chunk.readableBytesView)
            } catch {
                try await outbound.write(VortexErrorPacket(code: .invalidArgument, message: "\(error)").packet())
                return
            }
            for request in requests {
                switch request {
                case .close:
                    return
                case .unsupported(let tag):
                    let message = "tag \(tag.rawValue) is not served here (only the download-piece tags 0, 2 and 4)"
                    try await outbound.write(VortexErrorPacket(code: .invalidArgument, message: message).packet())
                case .downloadPiece(let want):
                    try await answer(want, outbound, source: source, budget: budget)
                }
            }
        }
    }

    private static func answer(_ want: DownloadPieceRequest, _ outbound: Replies,
                               source: some VortexPieceSource, budget: any VortexConnectionBudget) async throws {
        let piece: VortexOutgoingPiece
        do {
            piece = try await source.piece(taskID: want.taskID, number: want.pieceNumber, kind: want.kind)
        } catch {
            let refusal = error as? VortexErrorPacket ?? VortexErrorPacket(code: .internal, message: "\(error)")
            try await outbound.write(refusal.packet())
            return
        }
        do {
            try await budget.willSend(bytes: piece.length)
        } catch {
            piece.discard()
            let refusal = error as? VortexErrorPacket ?? VortexErrorPacket(code: .internal, message: "\(error)")
            try await outbound.write(refusal.packet())
            return
        }
        try await outbound.write(piece)
    }
}

/// Refused at accept: NIO closes the socket before any work is done for it.
struct ConnectionRefused: Error {}

/// Open connections by remote address, for `Limits.maxConnectionsPerIP`.
final class ConnectionsByAddress: Sendable {
    private let counts = Locked<[String: Int]>([:])

    func admit(_ address: String, limit: Int?) -> Bool {
        counts.withLock { counts in
            let open = counts[address, default: 0]
            if let limit, open >= limit { return false }
            counts[address] = open + 1
            return true
        }
    }

    func release(_ address: String) {
        counts.withLock { counts in
            guard let open = counts[address] else { return }
            if open <= 1 { counts.removeValue(forKey: address) } else { counts[address] = open - 1 }
        }
    }
}

/// Closes the connection on the idle event `IdleStateHandler` sends.
final class CloseWhenIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

extension VortexServer.Replies {
    /// Sends `length` bytes a chunk at a time, reading the next chunk while the current one
    /// goes out, so the disk and the socket work at once.
    fileprivate func sendReadAhead(length: Int, chunk: Int, read: @escaping @Sendable (Int, Int) async throws -> ByteBuffer,
                                   done: @Sendable () -> Void) async throws {
        func reading(_ start: Int) -> Task<ByteBuffer, any Error>? {
            start < length ? Task { try await read(start, min(chunk, length - start)) } : nil
        }
        var pending = reading(0)
        var failure: (any Error)?
        var sent = 0
        while let current = pending {
            do {
                let bytes = try await current.value
                let count = min(chunk, length - sent)
                // The head promised `length` bytes: a short chunk must end the connection.
                guard bytes.readableBytes == count else {
                    throw VortexErrorPacket(code: .internal, message: "read \(bytes.readableBytes) of \(count) bytes at \(sent)")
                }
                pending = reading(sent + count)
                try await channel.writeAndFlush(bytes)
                sent += count
            } catch {
                failure = error
                break
            }
        }
        // A read still running uses what `done` gives back: it ends first.
        _ = try? await pending?.value
        done()
        if let failure { throw failure }
    }
}
