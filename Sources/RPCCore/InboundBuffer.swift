import Locking

/// A queue between a synchronous producer (the transport's event loop) and one async
/// consumer. The producer is told to stop reading when the queue passes its high-water mark
/// (in elements, or in bytes when elements are weighed) and is called back once the
/// consumer has drained it to the low-water mark: this is how a slow reader slows the peer
/// down (the transport withholds HTTP/2 window until then).
public final class InboundBuffer<Element: Sendable>: Sendable {
    private struct State {
        /// Taken slots are set to nil at once: a consumed 4 MiB message must not stay alive
        /// until the queue is next compacted (a stream of pieces kept every piece it got).
        var queue: [Element?] = []
        var head = 0
        var finished = false
        var failure: RPCError?
        var waiter: CheckedContinuation<Element?, any Error>?
        var producerPaused = false
        var onDemand: (@Sendable () -> Void)?
        var onConsumerGone: (@Sendable () -> Void)?
        /// The queued elements' weight (bytes, for messages).
        var bytes = 0
        var count: Int { queue.count - head }
    }

    private let state = Locked(State())
    private let highWatermark: Int
    private let lowWatermark: Int
    private let highWaterBytes: Int
    private let weight: @Sendable (Element) -> Int

    /// `highWaterBytes` and `weight` bound what the queue holds in bytes as well: eight
    /// queued messages of a piece stream's size would be 8 MiB per stream. The producer
    /// resumes once the queue is down to half that weight (and `lowWatermark` elements).
    public init(highWatermark: Int = 16, lowWatermark: Int = 4, highWaterBytes: Int = .max,
                weight: @escaping @Sendable (Element) -> Int = { _ in 0 }) {
        self.highWatermark = max(1, highWatermark)
        self.lowWatermark = min(lowWatermark, max(0, highWatermark - 1))
        self.highWaterBytes = max(1, highWaterBytes)
        self.weight = weight
    }

    /// Called (off any lock) when a paused producer may produce again.
    public func setDemandHandler(_ handler: @escaping @Sendable () -> Void) {
        state.withLock { $0.onDemand = handler }
    }

    /// Called when the consumer cancels while waiting, so the producer can abort the call.
    public func setConsumerGoneHandler(_ handler: @escaping @Sendable () -> Void) {
        state.withLock { $0.onConsumerGone = handler }
    }

    /// Adds an element. Returns false when the producer should stop until demand returns.
    @discardableResult
    public func yield(_ element: Element) -> Bool {
        let (waiter, keepGoing): (CheckedContinuation<Element?, any Error>?, Bool) = state.withLock { s in
            if s.finished { return (nil, false) }
            if let w = s.waiter {
                s.waiter = nil
                return (w, true)
            }
            s.queue.append(element)
            s.bytes += weight(element)
            if s.count >= highWatermark || s.bytes >= highWaterBytes {
                s.producerPaused = true
                return (nil, false)
            }
            return (nil, true)
        }
        waiter?.resume(returning: element)
        return keepGoing
    }

    /// Ends the stream; queued elements are still delivered before the end (or the error).
    public func finish(_ failure: RPCError? = nil) {
        let waiter: CheckedContinuation<Element?, any Error>? = state.withLock { s in
            if s.finished { return nil }
            s.finished = true
            s.failure = failure
            let w = s.waiter
            s.waiter = nil
            return w
        }
        if let waiter {
            if let failure { waiter.resume(throwing: failure) } else { waiter.resume(returning: nil) }
        }
    }

    public var isFinished: Bool { state.withLock { $0.finished } }

    private enum Take {
        case value(Element, (@Sendable () -> Void)?)
        case end(RPCError?)
        case wait
    }

    /// Takes the head element, the end, or parks `continuation` as the waiter.
    private func take(orPark continuation: CheckedContinuation<Element?, any Error>) -> Take {
        state.withLock { s in
            if s.count > 0 {
                guard let e = s.queue[s.head] else { return .end(RPCError(code: .internal, message: "inbound queue corrupted")) }
                s.queue[s.head] = nil
                s.head += 1
                s.bytes -= weight(e)
                if s.head == s.queue.count {
                    s.queue.removeAll(keepingCapacity: true)
                    s.head = 0
                } else if s.head > 64 && s.head * 2 > s.queue.count {
                    s.queue.removeFirst(s.head)
                    s.head = 0
                }
                var demand: (@Sendable () -> Void)?
                if s.producerPaused && s.count <= lowWatermark && s.bytes <= highWaterBytes / 2 {
                    s.producerPaused = false
                    demand = s.onDemand
                }
                return .value(e, demand)
            }
            if s.finished { return .end(s.failure) }
            if Task.isCancelled { return .end(RPCError(code: .cancelled, message: "cancelled")) }
            s.waiter = continuation
            return .wait
        }
    }

    private func cancelWaiter() {
        let (waiter, gone): (CheckedContinuation<Element?, any Error>?, (@Sendable () -> Void)?) = state.withLock { s in
            let w = s.waiter
            s.waiter = nil
            return (w, w == nil ? nil : s.onConsumerGone)
        }
        waiter?.resume(throwing: RPCError(code: .cancelled, message: "cancelled"))
        gone?()
    }

    public func next() async throws -> Element? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Element?, any Error>) in
                switch take(orPark: cont) {
                case .value(let e, let demand):
                    cont.resume(returning: e)
                    demand?()
                case .end(let failure):
                    if let failure { cont.resume(throwing: failure) } else { cont.resume(returning: nil) }
                case .wait:
                    break
                }
            }
        } onCancel: {
            cancelWaiter()
        }
    }
}
