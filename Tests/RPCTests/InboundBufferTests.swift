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
}
