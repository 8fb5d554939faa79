import NIOCore
import Testing
import Synchronization
import RPCCore
import RPCTransport

/// A service on raw bytes, so the runtime is tested without generated code.
struct RawTestService: RPCServiceProvider {
    let serviceName = "test.Raw"
    let events: EventLog

    var methods: [RPCServerMethod] {
        let events = self.events
        return [
            RPCServerMethod(name: "Echo", kind: .unary) { requests, responses, context in
                let request = try await requests.single("Echo")
                if let v = context.requestMetadata["x-echo-initial"] { context.addInitialMetadata("x-echo-initial", .string(v)) }
                if let b = context.requestMetadata.binary("x-echo-trailing-bin") {
                    context.addTrailingMetadata("x-echo-trailing-bin", .binary(b))
                }
                try await responses.write(request)
            },
            RPCServerMethod(name: "Fail", kind: .unary) { requests, _, _ in
                let request = try await requests.single("Fail")
                throw RPCError(code: StatusCode(rawValue: Int(request.first ?? 2)), message: "failed ☺ on purpose",
                               details: [1, 2, 3])
            },
            RPCServerMethod(name: "Count", kind: .serverStreaming) { requests, responses, _ in
                let request = try await requests.single("Count")
                let n = Int(request.first ?? 0), size = Int(request.dropFirst().first ?? 1) << 10
                for i in 0..<n {
                    try await responses.write([UInt8](repeating: UInt8(truncatingIfNeeded: i), count: size))
                    events.add("wrote \(i)")
                }
            },
            // Messages of the sizes `encodedSizes` lists, alternately as encoded buffers
            // (sent as they are) and as arrays (copied into the transport's buffers).
            RPCServerMethod(name: "Mixed", kind: .serverStreaming) { requests, responses, _ in
                _ = try await requests.single("Mixed")
                for (i, size) in encodedSizes.enumerated() {
                    let message = patterned(size, seed: i)
                    if i % 2 == 0 {
                        try await responses.writeEncoded(ByteBuffer(bytes: message))
                    } else {
                        try await responses.write(message)
                    }
                }
            },
            RPCServerMethod(name: "Bidi", kind: .bidirectionalStreaming) { requests, responses, _ in
                for try await m in requests { try await responses.write(m.reversed()) }
            },
            RPCServerMethod(name: "Sleep", kind: .unary) { requests, responses, _ in
                // Cancellation may reach the handler while it still waits for the request
                // (on a loaded machine it starts late): count it wherever it lands.
                do {
                    _ = try await requests.single("Sleep")
                    events.add("sleep started")
                    try await Task.sleep(for: .seconds(30))
                } catch {
                    events.add("sleep cancelled")
                    throw error
                }
                try await responses.write([])
            },
        ]
    }
}

/// Sizes around the transport's copy threshold, a DATA frame, and well past both.
let encodedSizes = [0, 1, 4095, 4096, 16_384, 16_385, 70_000, (1 << 20) + 3, 5, 2 << 20]

func patterned(_ size: Int, seed: Int) -> [UInt8] {
    (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ seed) }
}

final class EventLog: Sendable {
    private let entries = Mutex<[String]>([])
    func add(_ e: String) { entries.withLock { $0.append(e) } }
    var all: [String] { entries.withLock { $0 } }
    func count(prefix: String) -> Int { all.filter { $0.hasPrefix(prefix) }.count }
}

func withServer(maxReceive: Int = 4 << 20, _ body: (RPCChannel, EventLog, RPCServer) async throws -> Void) async throws {
    let events = EventLog()
    var config = RPCServerConfiguration(address: .tcp(host: "127.0.0.1", port: 0))
    config.maxReceiveMessageSize = maxReceive
    let server = RPCServer(services: [RawTestService(events: events)], configuration: config)
    let port = try await server.start()
    let channel = try RPCChannel(address: "127.0.0.1:\(port)")
    do {
        try await body(channel, events, server)
    } catch {
        await channel.close()
        await server.shutdownGracefully(timeout: .seconds(1))
        throw error
    }
    await channel.close()
    await server.shutdownGracefully(timeout: .seconds(1))
}

func unary(_ channel: RPCChannel, _ path: String, _ message: [UInt8], options: CallOptions = CallOptions()) async throws -> [UInt8] {
    let handle = try await channel.openStream(path: path, options: options)
    try await handle.send(message)
    try await handle.finishSending()
    return try await handle.responses.single(path)
}

@Suite(.timeLimit(.minutes(1))) struct LoopbackRuntimeTests {
    @Test func unaryEchoCarriesMetadataBothWays() async throws {
        try await withServer { channel, _, _ in
            var options = CallOptions()
            options.metadata.add("x-echo-initial", "hello")
            options.metadata.add("x-echo-trailing-bin", binary: [0, 0xff, 7])
            let handle = try await channel.openStream(path: "/test.Raw/Echo", options: options)
            try await handle.send([9, 8, 7])
            try await handle.finishSending()
            #expect(try await handle.responses.single("echo") == [9, 8, 7])
            #expect(try await handle.initialMetadata()["x-echo-initial"] == "hello")
            let (status, trailers) = await handle.finalStatus()
            #expect(status.code == .ok)
            #expect(trailers.binary("x-echo-trailing-bin") == [0, 0xff, 7])
        }
    }

    @Test func errorStatusKeepsCodeMessageAndDetails() async throws {
        try await withServer { channel, _, _ in
            do {
                _ = try await unary(channel, "/test.Raw/Fail", [5])
                Issue.record("expected failure")
            } catch let error as RPCError {
                #expect(error.code == .notFound)
                #expect(error.message == "failed ☺ on purpose")
                #expect(error.details == [1, 2, 3])
            }
        }
    }

    @Test func unknownMethodAndServiceAreUnimplemented() async throws {
        try await withServer { channel, _, _ in
            for path in ["/test.Raw/Nope", "/no.Such/Thing"] {
                do {
                    _ = try await unary(channel, path, [])
                    Issue.record("expected failure")
                } catch let error as RPCError {
                    #expect(error.code == .unimplemented)
                }
            }
        }
    }

    @Test func serverStreamingDeliversInOrder() async throws {
        try await withServer { channel, _, _ in
            let handle = try await channel.openStream(path: "/test.Raw/Count", options: CallOptions())
            try await handle.send([200, 3])
            try await handle.finishSending()
            var i = 0
            for try await m in handle.responses {
                #expect(m.count == 3 << 10)
                #expect(m.first == UInt8(truncatingIfNeeded: i))
                i += 1
            }
            #expect(i == 200)
        }
    }

    @Test func encodedMessagesArriveWholeAndInOrderAmongCopiedOnes() async throws {
        try await withServer { channel, _, _ in
            let handle = try await channel.openStream(path: "/test.Raw/Mixed", options: CallOptions())
            try await handle.send([])
            try await handle.finishSending()
            var received: [[UInt8]] = []
            for try await m in handle.responses { received.append(m) }
            #expect(received.count == encodedSizes.count)
            for (i, size) in encodedSizes.enumerated() where i < received.count {
                #expect(received[i] == patterned(size, seed: i), "message \(i) of \(size) bytes")
            }
            #expect(await handle.finalStatus().0.code == .ok)
        }
    }

    @Test func bidirectionalPingPong() async throws {
        try await withServer { channel, _, _ in
            let handle = try await channel.openStream(path: "/test.Raw/Bidi", options: CallOptions())
            var iterator = handle.responses.makeAsyncIterator()
            for i in 0..<50 {
                try await handle.send([UInt8(i), 1])
                #expect(try await iterator.next() == [1, UInt8(i)])
            }
            try await handle.finishSending()
            #expect(try await iterator.next() == nil)
        }
    }

    @Test func deadlineExpiresAndServerHandlerIsCancelled() async throws {
        try await withServer { channel, events, _ in
            let start = ContinuousClock.now
            do {
                _ = try await unary(channel, "/test.Raw/Sleep", [], options: CallOptions(timeout: .milliseconds(500)))
                Issue.record("expected deadline")
            } catch let error as RPCError {
                #expect(error.code == .deadlineExceeded)
            }
            #expect(ContinuousClock.now - start < .seconds(5))
            #expect(await eventually(within: .seconds(5)) { events.count(prefix: "sleep cancelled") == 1 })
        }
    }

    @Test func clientCancelReachesServerHandler() async throws {
        try await withServer { channel, events, _ in
            let handle = try await channel.openStream(path: "/test.Raw/Sleep", options: CallOptions())
            try await handle.send([])
            try await handle.finishSending()
            // Cancelled once the handler is running, so what is tested is a cancellation
            // reaching a handler, not a stream refused before it began.
            #expect(await eventually(within: .seconds(10)) { events.count(prefix: "sleep started") == 1 })
            handle.cancel()
            let (status, _) = await handle.finalStatus()
            #expect(status.code == .cancelled)
            #expect(await eventually(within: .seconds(5)) { events.count(prefix: "sleep cancelled") == 1 })
        }
    }

    @Test func oversizedRequestIsResourceExhausted() async throws {
        try await withServer(maxReceive: 1024) { channel, _, _ in
            do {
                _ = try await unary(channel, "/test.Raw/Echo", [UInt8](repeating: 1, count: 4096))
                Issue.record("expected failure")
            } catch let error as RPCError {
                #expect(error.code == .resourceExhausted)
            }
            // The connection survives: the next call works.
            #expect(try await unary(channel, "/test.Raw/Echo", [1]) == [1])
        }
    }

    @Test func gzipRequestsAreAccepted() async throws {
        try await withServer { channel, _, _ in
            let body = [UInt8](repeating: 42, count: 10_000)
            let echoed = try await unary(channel, "/test.Raw/Echo", body, options: CallOptions(compressRequests: true))
            #expect(echoed == body)
        }
    }

    @Test func slowReaderHoldsBackTheWriter() async throws {
        try await withServer { channel, events, _ in
            let handle = try await channel.openStream(path: "/test.Raw/Count", options: CallOptions())
            try await handle.send([255, 255])  // 255 messages of ~255 KiB: about 64 MiB
            try await handle.finishSending()
            var iterator = handle.responses.makeAsyncIterator()
            _ = try await iterator.next()
            try await Task.sleep(for: .milliseconds(500))
            let writtenAhead = events.count(prefix: "wrote")
            // Window (1 MiB stream) + our 1 MiB outbound queue + 8 buffered messages: far below 255.
            #expect(writtenAhead < 40, "writer ran \(writtenAhead) messages ahead of a stalled reader")
            var n = 1
            while try await iterator.next() != nil { n += 1 }
            #expect(n == 255)
        }
    }

    /// A server with one bidirectional call open on it, its first message echoed; the
    /// caller reads on from `handle.responses` (iterators of one stream share its buffer).
    func bidiCallUnderway() async throws -> (RPCServer, Int, RPCChannel, any RPCClientStreamHandle) {
        let server = RPCServer(services: [RawTestService(events: EventLog())],
                               configuration: RPCServerConfiguration(address: .tcp(host: "127.0.0.1", port: 0)))
        let port = try await server.start()
        let channel = try RPCChannel(address: "127.0.0.1:\(port)")
        let handle = try await channel.openStream(path: "/test.Raw/Bidi", options: CallOptions())
        try await handle.send([1, 2])
        var first = handle.responses.makeAsyncIterator()
        #expect(try await first.next() == [2, 1])
        return (server, port, channel, handle)
    }

    @Test func gracefulShutdownLetsRunningCallFinish() async throws {
        let (server, port, channel, handle) = try await bidiCallUnderway()
        var iterator = handle.responses.makeAsyncIterator()
        let shutdown = Task { await server.shutdownGracefully(timeout: .seconds(5)) }
        // Shutdown has begun once the listener is closed; the open call goes on after that.
        #expect(await eventually(within: .seconds(10)) { await connectionRefused(port: port) }, "the listener stayed open")
        try await handle.send([3, 4])
        #expect(try await iterator.next() == [4, 3])
        try await handle.finishSending()
        #expect(try await iterator.next() == nil)
        await shutdown.value
        do {
            let again = try RPCChannel(address: "127.0.0.1:\(port)")
            _ = try await unary(again, "/test.Raw/Echo", [1])
            Issue.record("server should be gone")
        } catch let error as RPCError {
            #expect(error.code == .unavailable)
        }
        await channel.close()
    }

    /// A call that never ends must not hold shutdown past its grace period (it used to wait
    /// for the connection forever once the timeout had passed).
    @Test func gracefulShutdownClosesACallThatOutlivesTheGracePeriod() async throws {
        let (server, _, channel, handle) = try await bidiCallUnderway()
        var iterator = handle.responses.makeAsyncIterator()
        await server.shutdownGracefully(timeout: .milliseconds(300))
        do {
            while try await iterator.next() != nil {}
            Issue.record("the call ended cleanly, but the server should have cut it off")
        } catch let error as RPCError {
            #expect(error.code == .unavailable || error.code == .internal || error.code == .cancelled)
        }
        await channel.close()
    }

    /// Stopping by cancellation (as the all-in-one process does) still lets a running call finish.
    @Test func cancelledServerStillLetsRunningCallFinish() async throws {
        let (server, port, channel, handle) = try await bidiCallUnderway()
        var iterator = handle.responses.makeAsyncIterator()
        let serving = Task { await server.runUntilCancelled(gracePeriod: .seconds(20)) }
        serving.cancel()
        #expect(await eventually(within: .seconds(10)) { await connectionRefused(port: port) }, "the listener stayed open")
        try await handle.send([3, 4])
        #expect(try await iterator.next() == [4, 3])
        try await handle.finishSending()
        #expect(try await iterator.next() == nil)
        await serving.value
        await channel.close()
    }
}

