import RPCCore
import Testing
@testable import RPCTransport

/// A stalled reader must not make the transport inflate what it has not asked for: a peer
/// can fit hundreds of gzip messages of 4 MiB each (4 KiB compressed) into one stream window.
@Suite struct PacedDeframerTests {
    static let inflated = 4 << 20
    /// `count` gzip messages of `inflated` zero bytes each, framed as on the wire.
    static func bombs(_ count: Int) -> [UInt8] {
        let one = MessageFraming.frame(Gzip.compress([UInt8](repeating: 0, count: inflated)), compressed: true)
        return Array([[UInt8]](repeating: one, count: count).joined())
    }

    /// Collects what it is given and wants `capacity` messages before it says stop.
    final class Reader {
        var messages: [[UInt8]] = []
        var capacity: Int
        init(capacity: Int) { self.capacity = capacity }
        func deliver(_ message: [UInt8]) -> Bool {
            messages.append(message)
            return messages.count < capacity
        }
    }

    @Test func aPausedReaderLeavesTheRestCompressed() throws {
        let wire = Self.bombs(250)
        #expect(wire.count < 2 << 20, "250 messages of 4 MiB fit in \(wire.count) bytes")
        let reader = Reader(capacity: 8)
        var paced = PacedDeframer(MessageDeframer(maxMessageSize: Self.inflated, encoding: "gzip"), deliver: reader.deliver)
        let step = wire.withUnsafeBytes { paced.receive($0) }
        guard case .consumed(0) = step else { Issue.record("window given back while paused: \(step)"); return }
        #expect(reader.messages.count == 8)
        #expect(paced.paused)
        // What waits is the compressed bytes, not 242 inflated messages.
        #expect(paced.deframer.bufferedCount < wire.count)

        // The reader takes more: decoding goes on, by as much as it wants.
        reader.capacity = 20
        _ = paced.resume()
        #expect(reader.messages.count == 20)
        reader.capacity = .max
        guard case .consumed(let n) = paced.resume() else { Issue.record("no window given back"); return }
        #expect(n == wire.count, "the whole input's window is given back once it was read")
        #expect(reader.messages.count == 250)
        #expect(reader.messages.allSatisfy { $0.count == Self.inflated })
    }

    @Test func theEndWaitsForTheMessagesBeforeIt() throws {
        let wire = MessageFraming.frame([1, 2, 3]) + MessageFraming.frame([4]) + MessageFraming.frame([5])
        let reader = Reader(capacity: 1)
        var paced = PacedDeframer(MessageDeframer(maxMessageSize: 1 << 20), deliver: reader.deliver)
        _ = wire.withUnsafeBytes { paced.receive($0) }
        guard case .consumed(0) = paced.endOfInput() else { Issue.record("ended before the reader had all"); return }
        #expect(reader.messages == [[1, 2, 3]])
        reader.capacity = .max
        guard case .ended(let consumed, let cut) = paced.resume() else { Issue.record("no end"); return }
        #expect(reader.messages == [[1, 2, 3], [4], [5]])
        #expect(consumed == wire.count && cut == 0)
    }

    @Test func anEndInsideAMessageSaysHowMuchWasCut() throws {
        let wire = Array((MessageFraming.frame([1, 2, 3]) + MessageFraming.frame([4, 5, 6])).dropLast(2))
        let reader = Reader(capacity: .max)
        var paced = PacedDeframer(MessageDeframer(maxMessageSize: 1 << 20), deliver: reader.deliver)
        _ = wire.withUnsafeBytes { paced.receive($0) }
        guard case .ended(_, let cut) = paced.endOfInput() else { Issue.record("no end"); return }
        #expect(reader.messages == [[1, 2, 3]])
        #expect(cut == 1, "the second message's prefix was read, and one of its three bytes")
    }

    @Test func aBadMessageFailsOnceAndTheEndFollowsAtOnce() throws {
        // Compressed, but the call announced no encoding.
        let wire = MessageFraming.frame(Gzip.compress([1]), compressed: true)
        let reader = Reader(capacity: .max)
        var paced = PacedDeframer(MessageDeframer(maxMessageSize: 1 << 20), deliver: reader.deliver)
        guard case .failed = wire.withUnsafeBytes({ paced.receive($0) }) else {
            Issue.record("a compressed message without an encoding was read"); return
        }
        guard case .ended = paced.endOfInput() else { Issue.record("the end waited after a failure"); return }
        #expect(reader.messages.isEmpty)
    }
}
