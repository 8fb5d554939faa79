import Dispatch
#if canImport(Glibc)
import Glibc
#endif

extension RPCServer {
    /// Serves until SIGTERM or SIGINT (or until the calling task is cancelled), then shuts
    /// down gracefully (GOAWAY, let calls finish).
    public func runUntilTerminated(gracePeriod: Duration = .seconds(5)) async {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let sources = [SIGTERM, SIGINT].map { DispatchSource.makeSignalSource(signal: $0, queue: .global()) }
        let stop = StopSignal()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
                stop.wait(cont)
                for source in sources {
                    source.setEventHandler { stop.fire() }
                    source.resume()
                }
            }
        } onCancel: {
            stop.fire()
        }
        for source in sources { source.cancel() }
        await shutdownGracefully(timeout: gracePeriod)
    }
}

import Synchronization

/// Resumes its one waiter the first time it fires, whether the wait began before or after.
private final class StopSignal: Sendable {
    private let state = Mutex<(waiter: CheckedContinuation<Void, Never>?, fired: Bool)>((nil, false))

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
