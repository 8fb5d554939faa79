import Locking

/// Calls per second each service accepts, across all connections: a token bucket per
/// service that holds up to `burst` calls. A call that finds its bucket empty is refused
/// with RESOURCE_EXHAUSTED rather than queued, so an overloaded server sheds load at once.
final class RequestRateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var last: ContinuousClock.Instant
    }
    let perSecond: Double
    let burst: Double
    private let buckets = Locked<[String: Bucket]>([:])

    init(perSecond: Double, burst: Double) {
        self.perSecond = perSecond
        self.burst = max(1, burst)
    }

    /// True if a call to `service` may start now (and takes its token).
    func admit(_ service: String, now: ContinuousClock.Instant = .now) -> Bool {
        buckets.withLock { all in
            var b = all[service] ?? Bucket(tokens: burst, last: now)
            let elapsed = now - b.last
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            b.tokens = min(burst, b.tokens + seconds * perSecond)
            b.last = now
            let admitted = b.tokens >= 1
            if admitted { b.tokens -= 1 }
            all[service] = b
            return admitted
        }
    }
}
