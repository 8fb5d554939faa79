/// Failed sign-ins per user name: after `limit` failures within `window`, that name is
/// refused (429, Retry-After) until the oldest failure ages out, whatever the password.
/// Online guessing then costs an attacker `window` per `limit` guesses, on top of scrypt.
actor SignInThrottle {
    let limit: Int
    let window: Duration
    /// Names tracked at once; beyond it the stalest are forgotten, so a flood of made-up
    /// names cannot grow memory without bound.
    let capacity: Int
    private var failures: [String: [ContinuousClock.Instant]] = [:]

    init(limit: Int = 5, window: Duration = .seconds(60), capacity: Int = 10_000) {
        self.limit = limit
        self.window = window
        self.capacity = capacity
    }

    /// Seconds to wait before `name` may try again, or nil if it may now.
    func retryAfter(_ name: String, now: ContinuousClock.Instant = .now) -> Int? {
        let recent = prune(name, now: now)
        guard recent.count >= limit, let oldest = recent.first else { return nil }
        let wait = window - (now - oldest)
        return max(1, Int(wait.components.seconds) + (wait.components.attoseconds > 0 ? 1 : 0))
    }

    func failed(_ name: String, now: ContinuousClock.Instant = .now) {
        var recent = prune(name, now: now)
        recent.append(now)
        failures[name] = recent
        if failures.count > capacity {
            let stalest = failures.min { ($0.value.last ?? now) < ($1.value.last ?? now) }
            if let stalest { failures[stalest.key] = nil }
        }
    }

    func succeeded(_ name: String) { failures[name] = nil }

    private func prune(_ name: String, now: ContinuousClock.Instant) -> [ContinuousClock.Instant] {
        let recent = (failures[name] ?? []).filter { now - $0 < window }
        failures[name] = recent.isEmpty ? nil : recent
        return recent
    }
}
