import Synchronization
import Testing
import RPCCore

/// A message handed to the consumer is no longer held by the queue: a stream of 4 MiB
/// pieces used to keep every piece it had received until the stream ended.
@Suite struct InboundBufferTests {
    final class Message: Sendable {}

    @Test func aTakenMessageIsReleasedAtOnce() async throws {
        let buffer = InboundBuffer<Message>()
        weak var first: Message?
        do {
            let m = Message()
            first = m
            buffer.yield(m)
            buffer.yield(Message())
        }
        // Taken while another is still queued, so the queue is not simply emptied.
        _ = try await buffer.next()
        #expect(first == nil, "the queue still holds a message the consumer took")
        _ = try await buffer.next()
        buffer.finish()
        #expect(try await buffer.next() == nil)
    }

    /// Weighed messages stop the producer at the byte mark, whatever their count, and it
    /// resumes only once the queue is down to half of it.
    @Test func theProducerPausesAtTheByteMark() async throws {
        let mib = 1 << 20
        let demands = Counter()
        let buffer = InboundBuffer<[UInt8]>(highWatermark: 8, lowWatermark: 2, highWaterBytes: 2 * mib, weight: { $0.count })
        buffer.setDemandHandler { demands.add() }
        #expect(buffer.yield([UInt8](repeating: 1, count: mib)))
        #expect(!buffer.yield([UInt8](repeating: 2, count: mib)), "two MiB queued: the producer must stop")
        #expect(try await buffer.next()?.first == 1)
        #expect(demands.value == 1, "down to one MiB: the producer may go on")
        // One message past the mark stops the producer at once, and it resumes once it is taken.
        #expect(!buffer.yield([UInt8](repeating: 3, count: 4 * mib)))
        #expect(try await buffer.next()?.first == 2)
        #expect(demands.value == 1, "four MiB still queued")
        #expect(try await buffer.next()?.first == 3)
        #expect(demands.value == 2)
        // Unweighed elements count only by number, as before.
        let plain = InboundBuffer<[UInt8]>(highWatermark: 8, lowWatermark: 2)
        #expect(plain.yield([UInt8](repeating: 0, count: 16 * mib)))
    }

    final class Counter: Sendable {
        private let count = Mutex(0)
        func add() { count.withLock { $0 += 1 } }
        var value: Int { count.withLock { $0 } }
    }
}
