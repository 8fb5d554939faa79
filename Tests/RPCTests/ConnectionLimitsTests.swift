import Testing
import NIOCore
import NIOPosix
import RPCCore
@testable import RPCTransport

/// A service whose one method records how many calls run at once.
struct ConcurrencyProbe: RPCServiceProvider {
    let serviceName = "test.Probe"
    let gauge: Gauge

    var methods: [RPCServerMethod] {
        let gauge = self.gauge
        return [RPCServerMethod(name: "Hold", kind: .unary) { requests, responses, _ in
            _ = try await requests.single("Hold")
            gauge.enter()
            defer { gauge.leave() }
            try await Task.sleep(for: .milliseconds(150))
            try await responses.write([])
        }]
    }
}

import Synchronization

final class Gauge: Sendable {
    private let state = Mutex((current: 0, peak: 0))
    func enter() { state.withLock { $0.current += 1; $0.peak = max($0.peak, $0.current) } }
    func leave() { state.withLock { $0.current -= 1 } }
    var peak: Int { state.withLock { $0.peak } }
}

@Suite(.timeLimit(.minutes(1))) struct ConnectionLimitsTests {
    @Test func unixDomainSocketServesCalls() async throws {
        let path = "/tmp/rpc-test-\(UInt32.random(in: 0..<UInt32.max)).sock"
        let server = RPCServer(services: [RawTestService(events: EventLog())],
                               configuration: RPCServerConfiguration(address: .unix(path: path)))
        try await server.start()
        let channel = try RPCChannel(address: "unix:\(path)")
        #expect(try await unary(channel, "/test.Raw/Echo", [4, 2]) == [4, 2])
        await channel.close()
        await server.shutdownGracefully(timeout: .seconds(1))
    }

    @Test func maxConcurrentStreamsIsHonoured() async throws {
        let gauge = Gauge()
        var config = RPCServerConfiguration(address: .tcp(host: "127.0.0.1", port: 0))
        config.maxConcurrentStreams = 1
        let server = RPCServer(services: [ConcurrencyProbe(gauge: gauge)], configuration: config)
        let port = try await server.start()
        let channel = try RPCChannel(address: "127.0.0.1:\(port)")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask { _ = try await unary(channel, "/test.Probe/Hold", []) }
            }
            try await group.waitForAll()
        }
        #expect(gauge.peak == 1, "calls ran \(gauge.peak) at a time on a 1-stream connection")
        await channel.close()
        await server.shutdownGracefully(timeout: .seconds(1))
    }

    @Test func clientRejectsOversizedResponsesAndRequests() async throws {
        let server = RPCServer(services: [RawTestService(events: EventLog())],
                               configuration: RPCServerConfiguration(address: .tcp(host: "127.0.0.1", port: 0)))
        let port = try await server.start()
        var config = RPCClientConfiguration(target: .tcp(host: "127.0.0.1", port: port))
        config.maxReceiveMessageSize = 1024
        config.maxSendMessageSize = 2048
        let channel = try RPCChannel(configuration: config)
        do {
            _ = try await unary(channel, "/test.Raw/Echo", [UInt8](repeating: 1, count: 1500))
            Issue.record("a 1500-byte response passed a 1024-byte limit")
        } catch let error as RPCError {
            #expect(error.code == .resourceExhausted)
        }
        do {
            _ = try await unary(channel, "/test.Raw/Echo", [UInt8](repeating: 1, count: 4096))
            Issue.record("a 4096-byte request passed a 2048-byte limit")
        } catch let error as RPCError {
            #expect(error.code == .resourceExhausted)
        }
        #expect(try await unary(channel, "/test.Raw/Echo", [1, 2]) == [1, 2])
        await channel.close()
        await server.shutdownGracefully(timeout: .seconds(1))
    }

    @Test func serverKeepaliveClosesASilentPeer() async throws {
        var config = RPCServerConfiguration(address: .tcp(host: "127.0.0.1", port: 0))
        config.keepaliveInterval = .milliseconds(100)
        config.keepaliveTimeout = .milliseconds(200)
        let server = RPCServer(services: [RawTestService(events: EventLog())], configuration: config)
        let port = try await server.start()
        // A peer that speaks the preface and then never answers anything, PINGs included.
        let raw = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        var preface = raw.allocator.buffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        preface.writeBytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  // empty SETTINGS
        // On a loaded machine the server may already have given up on us before this lands;
        // that is the behaviour under test too, so a failed write is not a failure.
        try? await raw.writeAndFlush(preface)
        let start = ContinuousClock.now
        try await raw.closeFuture.get()
        #expect(ContinuousClock.now - start < .seconds(5))
        await server.shutdownGracefully(timeout: .seconds(1))
    }

    @Test func clientKeepaliveKeepsAnIdleCallAlive() async throws {
        let server = RPCServer(services: [RawTestService(events: EventLog())],
                               configuration: RPCServerConfiguration(address: .tcp(host: "127.0.0.1", port: 0)))
        let port = try await server.start()
        var config = RPCClientConfiguration(target: .tcp(host: "127.0.0.1", port: port))
        config.keepaliveInterval = .milliseconds(50)
        config.keepaliveTimeout = .milliseconds(500)
        let channel = try RPCChannel(configuration: config)
        let handle = try await channel.openStream(path: "/test.Raw/Bidi", options: CallOptions())
        var iterator = handle.responses.makeAsyncIterator()
        try await handle.send([1, 2])
        #expect(try await iterator.next() == [2, 1])
        // Twelve rounds at 50 ms outlast the 500 ms timeout: an unanswered PING would have
        // closed the connection before the call goes on below.
        #expect(await eventually(within: .seconds(20)) { await channel.keepalivePingsAcked() >= 12 },
                "keepalive PINGs were not sent and acknowledged")
        try await handle.send([3, 4])
        #expect(try await iterator.next() == [4, 3])
        try await handle.finishSending()
        #expect(try await iterator.next() == nil)
        await channel.close()
        await server.shutdownGracefully(timeout: .seconds(1))
    }
}

/// Answers any bytes with a fixed HTTP/1.1 response, standing in for an HTTP/1.1 server.
final class FixedHTTP1Responder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let body = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: body))).whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

/// Collects everything a raw connection receives until it closes.
final class Collector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var received = ""
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        received += b.readString(length: b.readableBytes) ?? ""
    }
}

@Suite(.timeLimit(.minutes(1))) struct SharedPortTests {
    @Test func http1AndGRPCShareOnePort() async throws {
        var config = RPCServerConfiguration(address: .tcp(host: "127.0.0.1", port: 0))
        config.otherProtocol = { channel in try channel.pipeline.syncOperations.addHandler(FixedHTTP1Responder()) }
        let server = RPCServer(services: [RawTestService(events: EventLog())], configuration: config)
        let port = try await server.start()

        let collector = Collector()
        let raw = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { $0.pipeline.addHandler(collector) }
            .connect(host: "127.0.0.1", port: port).get()
        try await raw.writeAndFlush(raw.allocator.buffer(string: "GET /healthy HTTP/1.1\r\nHost: x\r\n\r\n"))
        try await raw.closeFuture.get()
        let text = try await raw.eventLoop.submit { collector.received }.get()
        #expect(text.hasPrefix("HTTP/1.1 200 OK"))
        #expect(text.hasSuffix("OK"))

        let channel = try RPCChannel(address: "127.0.0.1:\(port)")
        #expect(try await unary(channel, "/test.Raw/Echo", [7]) == [7])
        await channel.close()
        await server.shutdownGracefully(timeout: .seconds(1))
    }
}
