import Foundation
import NIOCore
import NIOEmbedded
import Testing
@testable import RPCTransport

/// What our TLS handler puts on the wire when the HTTP/2 layer writes a burst of DATA
/// frames, each as a 9-byte header and a payload slice: whole records, not one per write.
@Suite struct TLSRecordTests {
    /// A throwaway CA and server certificate from `tools/make-test-ca.sh`.
    func certificates() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tls-records-\(UUID().uuidString)")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tools/make-test-ca.sh")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script.path, dir.path, "server"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        return dir
    }

    /// Moves bytes both ways until neither side has anything to send.
    func pump(_ a: EmbeddedChannel, _ b: EmbeddedChannel) throws {
        for _ in 0..<50 {
            var moved = false
            while let bytes = try a.readOutbound(as: ByteBuffer.self) { try b.writeInbound(bytes); moved = true }
            while let bytes = try b.readOutbound(as: ByteBuffer.self) { try a.writeInbound(bytes); moved = true }
            if !moved { return }
        }
    }

    @Test func aBurstOfFramesBecomesFullRecords() throws {
        let dir = try certificates()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serverTLS = try TLSContext(configuration: TLSConfiguration(
            certificateChainFile: dir.appendingPathComponent("server.pem").path,
            privateKeyFile: dir.appendingPathComponent("server.key").path), server: true)
        var clientConfig = TLSConfiguration(trustRootsFile: dir.appendingPathComponent("ca.pem").path)
        clientConfig.serverNameOverride = "localhost"
        let clientTLS = try TLSContext(configuration: clientConfig, server: false)

        let server = EmbeddedChannel(handler: try OpenSSLHandler(context: serverTLS, server: true, serverName: nil))
        let client = EmbeddedChannel(handler: try OpenSSLHandler(context: clientTLS, server: false, serverName: "localhost"))
        defer {
            _ = try? client.finish()
            _ = try? server.finish()
        }
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try pump(client, server)
        while try server.readInbound(as: ByteBuffer.self) != nil {}

        // Eight frames: header, then a 16 KiB payload slice.
        var sent: [UInt8] = []
        for frame in 0..<8 {
            let header = ByteBuffer(bytes: [0, 0x40, 0, 0, 0, 0, 0, 0, UInt8(frame + 1)])
            let payload = ByteBuffer(bytes: (0..<(16 << 10)).map { UInt8(truncatingIfNeeded: $0 &+ frame) })
            sent += header.readableBytesView
            sent += payload.readableBytesView
            client.write(header, promise: nil)
            client.write(payload, promise: nil)
        }
        #expect(try client.readOutbound(as: ByteBuffer.self) == nil, "nothing goes out before the flush")
        client.flush()

        var wire: [UInt8] = []
        while let bytes = try client.readOutbound(as: ByteBuffer.self) { wire += bytes.readableBytesView }
        // TLS records: type, version (2 bytes), length (2 bytes), then the record.
        var records = 0
        var at = 0
        while at + 5 <= wire.count {
            records += 1
            at += 5 + Int(wire[at + 3]) << 8 + Int(wire[at + 4])
        }
        #expect(at == wire.count)
        let full = (sent.count + (16 << 10) - 1) / (16 << 10)
        #expect(records == full, "\(sent.count) bytes in \(records) records (\(full) when each holds 16 KiB)")

        try server.writeInbound(ByteBuffer(bytes: wire))
        var received: [UInt8] = []
        while let bytes = try server.readInbound(as: ByteBuffer.self) { received += bytes.readableBytesView }
        #expect(received == sent)
    }
}
