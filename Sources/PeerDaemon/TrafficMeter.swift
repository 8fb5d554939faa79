import Locking

/// Bytes sent to children and received from parents and origins, turned into the rates a
/// host announces to the scheduler: the average over the period since rates were last taken.
final class TrafficMeter: Sendable {
    struct Rates: Sendable, Equatable {
        var txBitsPerSecond: UInt64 = 0
        var rxBitsPerSecond: UInt64 = 0
    }
    private struct State {
        var sent: UInt64 = 0
        var received: UInt64 = 0
        var since = ContinuousClock.now
        var last = Rates()
    }
    private let state = Locked(State())

    func sent(_ bytes: Int) { state.withLock { $0.sent = Self.saturatingSum($0.sent, bytes) } }
    func received(_ bytes: Int) { state.withLock { $0.received = Self.saturatingSum($0.received, bytes) } }

    private static func saturatingSum(_ total: UInt64, _ bytes: Int) -> UInt64 {
        let (sum, overflow) = total.addingReportingOverflow(UInt64(clamping: bytes))
        return overflow ? .max : sum
    }

    /// The rates over the period just ended, which starts the next one. Asked again within a
    /// second (one announcement to each of several schedulers), it gives the same rates.
    func rates() -> Rates {
        state.withLock { s in
            let now = ContinuousClock.now
            let elapsed = now - s.since
            guard elapsed >= .seconds(1) else { return s.last }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let rates = Rates(txBitsPerSecond: UInt64(min(Double(s.sent) * 8 / seconds, 1e18)),
                              rxBitsPerSecond: UInt64(min(Double(s.received) * 8 / seconds, 1e18)))
            s = State(since: now, last: rates)
            return rates
        }
    }
}
