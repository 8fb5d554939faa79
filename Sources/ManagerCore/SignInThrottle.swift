/// Failed sign-ins, counted per user name and per client address. After `perName.count`
/// failures of one name within its window that name is refused (429, Retry-After) until
/// the oldest ages out, whatever the password and wherever from; after `perClient.count`
/// failures from one address, that address is refused for any name. Online guessing then
/// costs a window per few guesses, on top of scrypt.
///
/// Both tables are bounded, and a locked entry is never what gets dropped to make room:
/// flooding made-up names (which fail, and so fill the table) must not free the name an
/// attacker is locked out of. When a table holds nothing but locked entries a new failure
/// goes unrecorded; the per-client limit still stops the client sending them.
public actor SignInThrottle {
    public struct Limit: Sendable {
        public var count: Int
        public var window: Duration
        public init(count: Int, window: Duration) {
            self.count = count
            self.window = window
        }
    }

    /// Who is refused, and for how many seconds.
    public enum Refusal: Sendable, Equatable {
        case name(seconds: Int)
        case client(seconds: Int)
        public var seconds: Int {
            switch self {
            case .name(let s), .client(let s): return s
            }
        }
    }

    private var names: FailureLog
    private var clients: FailureLog

    public init(perName: Limit = Limit(count: 5, window: .seconds(60)),
                perClient: Limit = Limit(count: 20, window: .seconds(60)), capacity: Int = 10_000) {
        names = FailureLog(limit: perName, capacity: capacity)
        clients = FailureLog(limit: perClient, capacity: capacity)
    }

    /// Why this attempt must wait, or nil if it may go ahead. The name is checked first so
    /// its owner learns that the account (not their address) is what is held.
    public func refusal(name: String, client: String, now: ContinuousClock.Instant = .now) -> Refusal? {
        if let s = names.retryAfter(name, now: now) { return .name(seconds: s) }
        if let s = clients.retryAfter(client, now: now) { return .client(seconds: s) }
        return nil
    }

    public func failed(name: String, client: String, now: ContinuousClock.Instant = .now) {
        names.record(name, now: now)
        clients.record(client, now: now)
    }

    /// Clears the name only: a client's count must not be reset by an attacker signing in
    /// to an account of their own between guesses at others.
    public func succeeded(name: String) { names.forget(name) }

    public var trackedNames: Int { names.count }
}

/// Recent failure times per key, at most `limit.count` each (the oldest of those decides
/// when a locked key is free again), at most `capacity` keys.
struct FailureLog {
    let limit: SignInThrottle.Limit
    let capacity: Int
    private var entries: [String: [ContinuousClock.Instant]] = [:]

    init(limit: SignInThrottle.Limit, capacity: Int) {
        self.limit = limit
        self.capacity = max(1, capacity)
    }

    var count: Int { entries.count }

    mutating func retryAfter(_ key: String, now: ContinuousClock.Instant) -> Int? {
        let recent = prune(key, now: now)
        guard recent.count >= limit.count, let oldest = recent.first else { return nil }
        let wait = limit.window - (now - oldest)
        return max(1, Int(wait.components.seconds) + (wait.components.attoseconds > 0 ? 1 : 0))
    }

    mutating func record(_ key: String, now: ContinuousClock.Instant) {
        var recent = prune(key, now: now)
        if recent.isEmpty, !makeRoom(now: now) { return }
        recent.append(now)
        entries[key] = Array(recent.suffix(limit.count))
    }

    mutating func forget(_ key: String) { entries[key] = nil }

    private func isLocked(_ times: [ContinuousClock.Instant], now: ContinuousClock.Instant) -> Bool {
        times.filter { now - $0 < limit.window }.count >= limit.count
    }

    /// Frees room for one more key: expired keys first, then the stalest unlocked ones,
    /// down to nine tenths of capacity so a flood pays for this sort once per many
    /// failures rather than on each. False when every key held is locked.
    private mutating func makeRoom(now: ContinuousClock.Instant) -> Bool {
        guard entries.count >= capacity else { return true }
        entries = entries.filter { _, times in times.contains { now - $0 < limit.window } }
        guard entries.count >= capacity else { return true }
        let target = capacity * 9 / 10
        let evictable = entries.filter { !isLocked($0.value, now: now) }
            .sorted { ($0.value.last ?? now) < ($1.value.last ?? now) }
        for (key, _) in evictable.prefix(entries.count - target) { entries[key] = nil }
        return entries.count < capacity
    }

    private mutating func prune(_ key: String, now: ContinuousClock.Instant) -> [ContinuousClock.Instant] {
        guard let times = entries[key] else { return [] }
        let recent = times.filter { now - $0 < limit.window }
        entries[key] = recent.isEmpty ? nil : recent
        return recent
    }
}
