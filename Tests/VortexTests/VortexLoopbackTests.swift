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
    let sent = Mutex<[Int]>([])
    let finished = Mutex(0)

    init(taskID: String, pieces: [UInt32: [UInt8]]) {
        self.taskID = taskID
        self.pieces = pieces
    }

    final class Budget: VortexConnectionBudget {
        let source: MemorySource
        init(_ source: MemorySource) { self.source = source }
        func willSend(bytes: Int) async throws { source.sent.withLock { $0.append(bytes) } }
        func finish() { source.finished.withLock { $0 += 1 } }
    }

    func openConnection(from host: String?) throws -> any VortexConnectionBudget { Budget(self) }

    func piece(taskID: String, number: UInt32) async throws -> VortexPiece {
        guard taskID == self.taskID, let bytes = pieces[number] else {
            throw VortexErrorPacket(code: .notFound, message: "piece \(number) not found")
        }
        return VortexPiece(metadata: PieceContentMetadata(number: number, offset: UInt64(number) * 4, length: UInt64(bytes.count),
                                                          digest: "crc32:1"), content: bytes)
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
