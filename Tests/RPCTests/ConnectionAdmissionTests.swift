import ConnectionLimits
import GeneratedAPI
import NIOCore
import NIOPosix
import RPCCore
import Testing
@testable import RPCTransport

/// A unary method typed with a real message, so its request is decoded like a service's.
struct DecodingProbe: RPCServiceProvider {
    let serviceName = "test.Decode"
    var methods: [RPCServerMethod] {
        [.unary("Check") { (_: Grpc_Health_V1_HealthCheckRequest, _: RPCServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse in
            Grpc_Health_V1_HealthCheckResponse()
        }]
    }
}

@Suite(.timeLimit(.minutes(1))) struct ConnectionAdmissionTests {
    @Test func theGateCountsPerAddressAndInAll() {
        let gate = ConnectionGate(perIP: 2, total: 3)
        #expect(gate.admit("10.0.0.1") == nil)
        #expect(gate.admit("10.0.0.1") == nil)
        #expect(gate.admit("10.0.0.1") != nil, "a third from one address")
        #expect(gate.admit("10.0.0.2") == nil)
        #expect(gate.admit("10.0.0.3") != nil, "a fourth in all")
        gate.release("10.0.0.1")
        #expect(gate.admit("10.0.0.1") == nil, "a released slot is free again")
        #expect(gate.admit(nil) != nil, "unix clients count towards the total")
        gate.release("10.0.0.2")
        #expect(gate.admit(nil) == nil)
        #expect(gate.openConnections == 3)
    }

    @Test func connectionsOverThePerAddressCapAreClosedAtAccept() async throws {
        var config = RPCServerConfiguration(address: .tcp(host: "127.0.0.1", port: 0))
        config.maxConnectionsPerIP = 2
        let server = RPCServer(services: [RawTestService(events: EventLog())], configuration: config)
        let port = try await server.start()
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        var held: [any Channel] = []
        for _ in 0..<2 { held.append(try await bootstrap.connect(host: "127.0.0.1", port: port).get()) }
        #expect(await eventually(within: .seconds(5)) { server.openConnections == 2 })
        // The third is accepted by the kernel and closed by the server without a word.
        let extra = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
        try await extra.closeFuture.get()
        #expect(server.openConnections == 2)
        for channel in held { #expect(channel.isActive, "an admitted connection was closed") }
        // Once one is gone, a gRPC client gets in.
        try await held.removeFirst().close()
        #expect(await eventually(within: .seconds(5)) { server.openConnections == 1 })
        let channel = try RPCChannel(address: "127.0.0.1:\(port)")
        #expect(try await unary(channel, "/test.Raw/Echo", [9]) == [9])
        await channel.close()
        for channel in held { try? await channel.close() }
        await server.shutdownGracefully(timeout: .seconds(1))
    }

    @Test func anIdleConnectionIsClosedThoughItAnswersEveryPing() async throws {
        var config = RPCServerConfiguration(address: .tcp(host: "127.0.0.1", port: 0))
        // Long enough that a client on a loaded machine (the suite runs tests in parallel)
        // opens its stream before a fresh connection counts as idle; forty PINGs meanwhile.
        config.idleTimeout = .seconds(2)
        config.keepaliveInterval = .milliseconds(50)
        config.keepaliveTimeout = .seconds(5)
        let server = RPCServer(services: [RawTestService(events: EventLog())], configuration: config)
        let port = try await server.start()
        // Our client acknowledges every PING, which used to count as use and kept the
        // connection for ever; only calls count now.
        let channel = try RPCChannel(address: "127.0.0.1:\(port)")
        // Taken before the call: the server's idle clock starts when the call ends, so this
        // bound holds however late a loaded machine resumes this task after the answer.
        let start = ContinuousClock.now
        #expect(try await unary(channel, "/test.Raw/Echo", [1]) == [1])
        #expect(await eventually(within: .seconds(10)) { server.openConnections == 0 }, "the idle connection stayed open")
        #expect(ContinuousClock.now - start >= .seconds(2), "closed before it had been idle for idleTimeout")
        // The client reconnects for its next call.
        #expect(try await unary(channel, "/test.Raw/Echo", [2]) == [2])
        await channel.close()
        await server.shutdownGracefully(timeout: .seconds(1))
    }

    @Test func aRequestThatIsNotItsMessageIsInvalidArgument() async throws {
        let server = RPCServer(services: [DecodingProbe()],
                               configuration: RPCServerConfiguration(address: .tcp(host: "127.0.0.1", port: 0)))
        let port = try await server.start()
        let channel = try RPCChannel(address: "127.0.0.1:\(port)")
        // Field 1 (a string) announcing 16 bytes and carrying none.
        do {
            _ = try await unary(channel, "/test.Decode/Check", [0x0A, 0x10])
            Issue.record("a malformed request was accepted")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument, "\(error)")
        }
        #expect(try await unary(channel, "/test.Decode/Check", []) == [])
        await channel.close()
        await server.shutdownGracefully(timeout: .seconds(1))
    }
}
