import Locking

extension RPCServer {
    /// Serves until the calling task is cancelled, then shuts down gracefully (GOAWAY, open
    /// calls get `gracePeriod` to finish). Signals are the process's business, not the
    /// transport's: a service group cancels this on SIGTERM.
    public func runUntilCancelled(gracePeriod: Duration = .seconds(5)) async {
        let stop = StopSignal()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in stop.wait(cont) }
        } onCancel: {
            stop.fire()
        }
        await shutdownGracefully(timeout: gracePeriod)
    }
}

/// Resumes its one waiter the first time it fires, whether the wait began before or after.
private final class StopSignal: Sendable {
    private let state = Locked<(waiter: CheckedContinuation<Void, Never>?, fired: Bool)>((nil, false))

    func wait(_ cont: CheckedContinuation<Void, Never>) {
        let resumeNow = state.withLock { s -> Bool in
            if s.fired { return true }
            s.waiter = cont
            return false
        }
        if resumeNow { cont.resume() }
    }

    func fire() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard !s.fired else { return nil }
            s.fired = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }
}
