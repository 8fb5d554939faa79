import Locking

/// Wakes the tasks waiting on a key when something about that key changes: a piece landed,
/// a task finished, a fetch ended. Each key has a version; a waiter names the version it
/// last looked at and is woken as soon as the key moves past it, so a change that happens
/// between looking and waiting is never missed (no polling, no lost wake-ups).
public final class ChangeSignal: Sendable {
    private struct State {
        var versions: [String: UInt64] = [:]
        var waiters: [String: [UInt64: CheckedContinuation<Void, Never>]] = [:]
        /// Waiters between taking an id and registering; a cancel removes its id from here,
        /// so one cancelled before registering does not sleep.
        var pending: Set<UInt64> = []
        var nextWaiter: UInt64 = 0
    }
    private let state = Locked(State())

    public init() {}

    /// The key's current version; pass it to `wait` after looking at the state it guards.
    public func version(_ key: String) -> UInt64 { state.withLock { $0.versions[key, default: 0] } }

    /// Tasks asleep on `key` now: lets a test make a change only once someone waits for it.
    public func waiterCount(_ key: String) -> Int { state.withLock { $0.waiters[key]?.count ?? 0 } }

    /// Records a change of `key` and wakes everyone waiting on it.
    public func signal(_ key: String) {
        let woken = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.versions[key, default: 0] &+= 1
            return s.waiters.removeValue(forKey: key).map { Array($0.values) } ?? []
        }
        for waiter in woken { waiter.resume() }
    }

    /// Returns once `key` is past `version`, or after `timeout`, or when the calling task is
    /// cancelled, whichever comes first. The caller looks at the state again either way.
    public func wait(_ key: String, after version: UInt64, timeout: Duration) async {
        guard self.version(key) == version else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForChange(key, after: version) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForChange(_ key: String, after version: UInt64) async {
        let id = state.withLock { s -> UInt64 in
            s.nextWaiter &+= 1
            s.pending.insert(s.nextWaiter)
            return s.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let sleeps = state.withLock { s -> Bool in
                    guard s.pending.remove(id) != nil, s.versions[key, default: 0] == version else { return false }
                    s.waiters[key, default: [:]][id] = continuation
                    return true
                }
                if !sleeps { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                if let c = s.waiters[key]?.removeValue(forKey: id) {
                    if s.waiters[key]?.isEmpty == true { s.waiters.removeValue(forKey: key) }
                    return c
                }
                s.pending.remove(id)
                return nil
            }
            waiter?.resume()
        }
    }
}
