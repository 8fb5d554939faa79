import Locking

/// A token bucket in bytes per second: `take(n)` waits until n bytes may pass. It starts
/// empty and saves up at most one second's worth, so a transfer never beats the limit by
/// more than a second of burst.
public final class TokenBucket: Sendable {
    private struct State {
        var tokens: Double
        var last: ContinuousClock.Instant
    }
    public let bytesPerSecond: Double
    private let state: Locked<State>

    /// `bytesPerSecond` ≤ 0 means unlimited.
    public init(bytesPerSecond: Double) {
        self.bytesPerSecond = bytesPerSecond
        self.state = Locked(State(tokens: 0, last: .now))
    }

    public var isUnlimited: Bool { bytesPerSecond <= 0 }

    public func take(_ bytes: Int) async throws {
        guard !isUnlimited, bytes > 0 else { return }
        let wait: Duration = state.withLock { s in
            let now = ContinuousClock.now
            let elapsed = now - s.last
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            s.tokens = min(bytesPerSecond, s.tokens + seconds * bytesPerSecond)
            s.last = now
            // Take now, repay later: the debt is the time this caller waits.
            s.tokens -= Double(bytes)
            guard s.tokens < 0 else { return .zero }
            return .nanoseconds(Int64(-s.tokens / bytesPerSecond * 1e9))
        }
        if wait > .zero { try await Task.sleep(for: wait) }
    }
}
