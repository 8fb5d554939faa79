#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing
import VortexProtocol
import VortexTransport

/// Pieces of one task held in memory; the budget counts what each connection sent.
final class MemorySource: VortexPieceSource {
    let taskID: String
    let pieces: [UInt32: [UInt8]]
    let kind: VortexPieceKind
    let sent = Mutex<[Int]>([])
    let finished = Mutex(0)

    init(taskID: String, pieces: [UInt32: [UInt8]], kind: VortexPieceKind = .task) {
        self.taskID = taskID
        self.kind = kind
        self.pieces = pieces
    }

    final class Budget: VortexConnectionBudget {
        let source: MemorySource
        init(_ source: MemorySource) { self.source = source }
        func willSend(bytes: Int) async throws { source.sent.withLock { $0.append(bytes) } }
        func finish() { source.finished.withLock { $0 += 1 } }
    }

    func openConnection(from host: String?) throws -> any VortexConnectionBudget { Budget(self) }

    func piece(taskID: String, number: UInt32, kind: VortexPieceKind) async throws -> VortexOutgoingPiece {
        guard taskID == self.taskID, kind == self.kind, let bytes = pieces[number] else {
            throw VortexErrorPacket(code: .notFound, message: "piece \(number) not found")
        }
        return VortexOutgoingPiece(metadata: PieceContentMetadata(number: number, offset: UInt64(number) * 4, length: UInt64(bytes.count),
                                                                  digest: "crc32:1"), body: .bytes(ByteBuffer(bytes: bytes)), kind: kind)
    }
}

/// Pieces of fixed length laid end to end in one file, sent as file regions; it keeps the
/// handles it gave out so a test can see the server closed each one.
final class FileSource: VortexPieceSource {
    let path: String
    let pieceLength: Int
    let handles = Mutex<[NIOFileHandle]>([])
    let refuseBudget: Bool

    init(path: String, pieceLength: Int, refuseBudget: Bool = false) {
        self.path = path
        self.pieceLength = pieceLength
        self.refuseBudget = refuseBudget
    }

    final class Budget: VortexConnectionBudget {
        let refuse: Bool
        init(refuse: Bool) { self.refuse = refuse }
        func willSend(bytes: Int) async throws {
            if refuse { throw VortexErrorPacket(code: .internal, message: "over budget") }
        }
        func finish() {}
    }

    func openConnection(from host: String?) throws -> any VortexConnectionBudget { Budget(refuse: refuseBudget) }

    func piece(taskID: String, number: UInt32, kind: VortexPieceKind) async throws -> VortexOutgoingPiece {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw VortexErrorPacket(code: .internal, message: "cannot open \(path)") }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
        handles.withLock { $0.append(handle) }
        let offset = Int(number) * pieceLength
        return VortexOutgoingPiece(metadata: PieceContentMetadata(number: number, offset: UInt64(offset), length: UInt64(pieceLength),
                                                                  digest: "crc32:1"),
                                   body: .file(handle, offset: offset, length: pieceLength))
    }
}

/// Pieces read a chunk at a time as they are sent; counts the reads, the most bytes any
/// one read returned, and the pieces finished. `shortAt` makes the read at that start
/// return one byte too few.
final class ChunkedSource: VortexPieceSource {
    let content: [UInt8]
    let chunk: Int
    let shortAt: Int?
    let reads = Mutex(0)
    let largestRead = Mutex(0)
    let done = Mutex(0)
    /// Reads running now, the most at once, and how many ran when `done` was called.
    let running = Mutex(0)
    let mostAtOnce = Mutex(0)
    let runningAtDone = Mutex(0)
    /// Yields once for each `done`.
    let finished: AsyncStream<Void>
    private let finishing: AsyncStream<Void>.Continuation

    init(content: [UInt8], chunk: Int, shortAt: Int? = nil) {
        self.content = content
        self.chunk = chunk
        self.shortAt = shortAt
        (finished, finishing) = AsyncStream.makeStream()
    }

    final class Budget: VortexConnectionBudget {
        func willSend(bytes: Int) async throws {}
        func finish() {}
    }

    func openConnection(from host: String?) throws -> any VortexConnectionBudget { Budget() }

    func piece(taskID: String, number: UInt32, kind: VortexPieceKind) async throws -> VortexOutgoingPiece {
        let (content, shortAt) = (content, shortAt)
        let read: @Sendable (Int, Int) async throws -> ByteBuffer = { [self] start, count in
            reads.withLock { $0 += 1 }
            largestRead.withLock { $0 = max($0, count) }
            let now = running.withLock { $0 += 1; return $0 }
            mostAtOnce.withLock { $0 = max($0, now) }
            defer { running.withLock { $0 -= 1 } }
            // Slow enough that a read begun while the previous chunk is sent is still running
            // when a short chunk ends the piece.
            try await Task.sleep(for: .milliseconds(20))
            return ByteBuffer(bytes: content[start..<(start + count - (start == shortAt ? 1 : 0))])
        }
        let done: @Sendable () -> Void = { [self] in
            runningAtDone.withLock { $0 += running.withLock { $0 } }
            self.done.withLock { $0 += 1 }
            finishing.yield()
        }
        return VortexOutgoingPiece(metadata: PieceContentMetadata(number: number, offset: 0, length: UInt64(content.count), digest: "crc32:1"),
                                   body: .reader(length: content.count, chunk: chunk, read: read, done: done))
    }
}

@Suite(.timeLimit(.minutes(1))) struct VortexLoopbackTests {
    static let task = String(repeating: "ab", count: 32)

    @Test func clientFetchesPiecesAndSeesRefusals() async throws {
        var big = [UInt8](repeating: 0x5a, count: 64 << 20)
        for i in stride(from: 0, to: big.count, by: 4096) { big[i] = UInt8(truncatingIfNeeded: i >> 12) }
        let source = MemorySource(taskID: Self.task, pieces: [0: Array("hello".utf8), 1: big])
        let server = try await VortexServer.start(host: "127.0.0.1", port: 0, source: source, logger: Logger(label: "vortex"))
        let client = VortexClient()
        let small = try await client.downloadPiece(host: "127.0.0.1", port: server.port, taskID: Self.task, number: 0, expectedLength: 5)
        #expect(small.content == Array("hello".utf8))
        #expect(small.metadata.number == 0)
        let large = try await client.downloadPiece(host: "127.0.0.1", port: server.port, taskID: Self.task, number: 1)
        #expect(large.content == big)
        #expect(large.metadata.offset == 4)
        do {
            _ = try await client.downloadPiece(host: "127.0.0.1", port: server.port, taskID: Self.task, number: 9)
            Issue.record("a missing piece was served")
        } catch VortexClientError.refused(let packet) {
            #expect(packet == VortexErrorPacket(code: .notFound, message: "piece 9 not found"))
        }
        do {
            _ = try await client.downloadPiece(host: "127.0.0.1", port: server.port, taskID: Self.task, number: 0, expectedLength: 6)
            Issue.record("a piece of the wrong length was accepted")
        } catch VortexClientError.unexpected {}
        #expect(source.sent.withLock { $0 } == [5, 64 << 20, 5])
        await server.stop()
    }

    /// A piece read as it is sent arrives whole, read in chunks no larger than asked; a
    /// chunk that comes back short ends the connection instead of a short piece passing,
    /// and each piece's handle is given back once either way.
    @Test func chunkedPiecesAreReadAsTheyAreSent() async throws {
        let content = (0..<(5 << 20) + 123).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        let source = ChunkedSource(content: content, chunk: 1 << 20)
        let server = try await VortexServer.start(host: "127.0.0.1", port: 0, source: source, logger: Logger(label: "vortex"))
        let piece = try await VortexClient().downloadPiece(host: "127.0.0.1", port: server.port, taskID: Self.task, number: 0)
        #expect(piece.content == content)
        #expect(source.reads.withLock { $0 } == 6 && source.largestRead.withLock { $0 } == 1 << 20)
        #expect(source.done.withLock { $0 } == 1)
        // One read at a time, each while the chunk before it is sent; none left running at `done`.
        #expect(source.mostAtOnce.withLock { $0 } == 1)
        #expect(source.runningAtDone.withLock { $0 } == 0)
        await server.stop()

        let short = ChunkedSource(content: content, chunk: 1 << 20, shortAt: 2 << 20)
        let shortServer = try await VortexServer.start(host: "127.0.0.1", port: 0, source: short, logger: Logger(label: "vortex"))
        await #expect(throws: VortexClientError.self) {
            _ = try await VortexClient().downloadPiece(host: "127.0.0.1", port: shortServer.port, taskID: Self.task, number: 0)
        }
        #expect(short.done.withLock { $0 } == 1)
        #expect(short.runningAtDone.withLock { $0 } == 0)
        await shortServer.stop()

        // A child that goes away mid-piece: the send fails while the next chunk is being
        // read, and what the read uses is given back only once it ended.
        let left = ChunkedSource(content: content, chunk: 1 << 20)
        let leftServer = try await VortexServer.start(host: "127.0.0.1", port: 0, source: left, logger: Logger(label: "vortex"))
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: leftServer.port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: try DownloadPieceRequest(taskID: Self.task, pieceNumber: 0).packet()))
            for try await _ in inbound { break }
        }
        for await _ in left.finished { break }
        #expect(left.done.withLock { $0 } == 1)
        #expect(left.reads.withLock { $0 } < 6, "the piece was not sent whole")
        #expect(left.runningAtDone.withLock { $0 } == 0)
        await leftServer.stop()
    }

    /// A persistent cache task's pieces: asked with tag 4, answered with tag 5, and not
    /// served to a request for a task's piece (tag 0), as upstream keeps the two apart.
    @Test func persistentCachePiecesGoByTheirOwnTags() async throws {
        let source = MemorySource(taskID: Self.task, pieces: [0: Array("kept".utf8)], kind: .persistentCacheTask)
        let server = try await VortexServer.start(host: "127.0.0.1", port: 0, source: source, logger: Logger(label: "vortex"))
        let client = VortexClient()
        let piece = try await client.downloadPiece(host: "127.0.0.1", port: server.port, taskID: Self.task, number: 0,
                                                   kind: .persistentCacheTask, expectedLength: 4)
        #expect(piece.content == Array("kept".utf8))
        do {
            _ = try await client.downloadPiece(host: "127.0.0.1", port: server.port, taskID: Self.task, number: 0)
            Issue.record("a persistent cache task's piece was served for tag 0")
        } catch VortexClientError.refused(let packet) {
            #expect(packet.code == .notFound)
        }
        await server.stop()
        // On the wire: the request's tag is 4, and a tag-1 answer to it is refused.
        #expect(try DownloadPieceRequest(taskID: Self.task, pieceNumber: 0, kind: .persistentCacheTask).packet()[1] == 4)
        var parser = VortexResponseParser(kind: .persistentCacheTask)
        let metadata = PieceContentMetadata(number: 0, offset: 0, length: 1, digest: "crc32:1")
        #expect(metadata.packetHead(kind: .persistentCacheTask)[1] == 5)
        #expect(throws: VortexDecodingError.self) { try parser.feed(metadata.packetHead()) }
    }

    /// A piece sent from a file region arrives byte for byte, from its offset; the server
    /// closes every handle it was given, sent or refused.
    @Test func filePiecesAreSentFromTheirRegionAndTheirHandlesClosed() async throws {
        let pieceLength = 3 << 20
        var content = [UInt8](repeating: 0, count: 3 * pieceLength)
        for i in content.indices { content[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
        let path = "/tmp/vortex-file-source-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        #expect(fd >= 0)
        let written = content.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count, let base = raw.baseAddress {
                let n = write(fd, base + done, raw.count - done)
                guard n > 0 else { break }
                done += n
            }
            return done
        }
        close(fd)
        #expect(written == content.count)
        defer { unlink(path) }

        let source = FileSource(path: path, pieceLength: pieceLength)
        let server = try await VortexServer.start(host: "127.0.0.1", port: 0, source: source, logger: Logger(label: "vortex"))
        let client = VortexClient()
        for number in [2, 0, 1] as [UInt32] {
            let piece = try await client.downloadPiece(host: "127.0.0.1", port: server.port, taskID: Self.task, number: number,
                                                       expectedLength: UInt64(pieceLength))
            let start = Int(number) * pieceLength
            #expect(piece.content == Array(content[start..<start + pieceLength]), "piece \(number)")
        }
        #expect(source.handles.withLock { $0.count } == 3)
        #expect(source.handles.withLock { $0.allSatisfy { !$0.isOpen } })
        await server.stop()

        let refusing = FileSource(path: path, pieceLength: pieceLength, refuseBudget: true)
        let refusingServer = try await VortexServer.start(host: "127.0.0.1", port: 0, source: refusing, logger: Logger(label: "vortex"))
        do {
            _ = try await client.downloadPiece(host: "127.0.0.1", port: refusingServer.port, taskID: Self.task, number: 0)
            Issue.record("a piece over budget was sent")
        } catch VortexClientError.refused(let packet) {
            #expect(packet.message == "over budget")
        }
        #expect(refusing.handles.withLock { $0.count == 1 && !$0[0].isOpen })
        await refusingServer.stop()
    }

    /// Raw bytes on a socket: a bad request gets an invalid-argument error packet, then the end.
    @Test func serverAnswersGarbageWithAnErrorPacketAndCloses() async throws {
        let source = MemorySource(taskID: Self.task, pieces: [:])
        let server = try await VortexServer.start(host: "127.0.0.1", port: 0, source: source, logger: Logger(label: "vortex"))
        let reply = try await exchange(port: server.port, send: [0, 0, 0xff, 0xff, 0xff, 0xff])
        var parser = VortexResponseParser()
        guard case .error(let packet)? = try parser.feed(reply) else {
            Issue.record("no error packet: \(reply)")
            return
        }
        #expect(packet.code == .invalidArgument)
        #expect(packet.message.contains("oversized"))
        // A close packet ends the connection quietly.
        #expect(try await exchange(port: server.port, send: VortexClose.packet()) == [])
        await server.stop()
    }

    /// Sends `bytes`, then reads until the server closes.
    func exchange(port: Int, send bytes: [UInt8]) async throws -> [UInt8] {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: bytes))
            var got: [UInt8] = []
            for try await chunk in inbound { got += chunk.readableBytesView }
            return got
        }
    }
}
