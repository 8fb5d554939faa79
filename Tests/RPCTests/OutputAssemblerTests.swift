import NIOCore
import Testing
@testable import RPCTransport

/// What the connection writes for a burst of frames: small bytes copied together, large
/// DATA payloads as slices of the queued messages (not copies of them).
@Suite struct OutputAssemblerTests {
    func message(_ count: Int) -> ByteBuffer {
        ByteBuffer(bytes: (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7) })
    }

    @Test func aLargePayloadLeavesAsASliceOfItsMessage() {
        var queue = OutboundQueue()
        let big = message(1 << 20)
        queue.append(MessageFraming.prefixBuffer(length: big.readableBytes))
        queue.append(big)
        let out = OutputAssembler(allocator: ByteBufferAllocator())
        let header: [UInt8] = [0, 0x40, 0, 0, 0, 0, 0, 0, 1]
        header.withUnsafeBytes { out.copy($0) }
        queue.send(count: 16 << 10, to: out)
        let buffers = out.take()
        // The frame header and the 5-byte prefix are copied into one buffer; the rest of
        // the frame is the message's own storage.
        #expect(buffers.map(\.readableBytes) == [9 + 5, (16 << 10) - 5])
        let sliceBase = buffers[1].withUnsafeReadableBytes { $0.baseAddress }
        let messageBase = big.withUnsafeReadableBytes { $0.baseAddress }
        #expect(sliceBase == messageBase)
        #expect(queue.queuedBytes == (1 << 20) + 5 - (16 << 10))
    }

    @Test func bytesComeOutInOrderWhateverTheirSizes() {
        var queue = OutboundQueue()
        var expected: [UInt8] = []
        for size in [3, 5000, 1, 70_000, 4095, 4096] {
            let m = message(size)
            expected += m.readableBytesView
            queue.append(m)
        }
        let out = OutputAssembler(allocator: ByteBufferAllocator())
        var sent: [UInt8] = []
        var frames = 0
        while !queue.isEmpty, frames < 100 {
            let frameHeader: [UInt8] = [9, 9, 9]
            frameHeader.withUnsafeBytes { out.copy($0) }
            queue.send(count: min(16_384, queue.queuedBytes), to: out)
            frames += 1
        }
        for buffer in out.take() { sent += buffer.readableBytesView }
        // Strip the 3-byte markers the loop put before each frame's payload.
        var payload: [UInt8] = []
        var i = 0
        var left = expected.count
        while i < sent.count {
            #expect(Array(sent[i..<(i + 3)]) == [9, 9, 9])
            let n = min(16_384, left)
            payload += sent[(i + 3)..<(i + 3 + n)]
            i += 3 + n
            left -= n
        }
        #expect(payload == expected)
        #expect(out.isEmpty)
    }
}
