import RPCCore

/// A call's received messages, decoded only while its reader wants more. A reader that
/// falls behind stops the decoding, not just the delivery: one compressed message may
/// inflate a thousandfold, so what waits for the reader stays as it came, bounded by the
/// stream window held back meanwhile. The end of the input is passed on once every whole
/// message before it was delivered.
struct PacedDeframer {
    var deframer: MessageDeframer
    /// The reader said it has enough; nothing is decoded until `resume`.
    private(set) var paused = false
    /// Received bytes whose window is held back while the reader is paused.
    private var unconsumed = 0
    private var endPending = false
    private var ended = false
    /// Takes a message and says whether the reader wants more.
    private let deliver: ([UInt8]) -> Bool

    init(_ deframer: MessageDeframer, deliver: @escaping ([UInt8]) -> Bool) {
        self.deframer = deframer
        self.deliver = deliver
    }

    enum Step {
        /// Give this many bytes of window back to the peer (zero while paused).
        case consumed(Int)
        /// The input ended and every whole message before it was delivered; `cut` bytes of
        /// an unfinished message were left over.
        case ended(consumed: Int, cut: Int)
        /// A message could not be read: the call ends with this error.
        case failed(RPCError)
    }

    mutating func receive(_ bytes: UnsafeRawBufferPointer) -> Step {
        deframer.append(bytes)
        unconsumed += bytes.count
        return drain()
    }

    /// The reader wants more again.
    mutating func resume() -> Step {
        paused = false
        return drain()
    }

    /// No more input will come; `.ended` once the reader has had every whole message.
    mutating func endOfInput() -> Step {
        // After a failure nothing more is read, and the end may be passed on at once.
        if ended { return .ended(consumed: 0, cut: 0) }
        endPending = true
        return drain()
    }

    private mutating func drain() -> Step {
        guard !ended else { return .consumed(0) }
        do {
            while !paused, let message = try deframer.next() {
                if !deliver(message) { paused = true }
            }
        } catch {
            ended = true
            return .failed(error)
        }
        guard !paused else { return .consumed(0) }
        let consumed = unconsumed
        unconsumed = 0
        guard endPending else { return .consumed(consumed) }
        ended = true
        return .ended(consumed: consumed, cut: deframer.bufferedCount)
    }
}
