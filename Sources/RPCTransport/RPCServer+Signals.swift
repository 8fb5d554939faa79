import Dispatch
#if canImport(Glibc)
import Glibc
#endif

extension RPCServer {
    /// Serves until SIGTERM or SIGINT (or until the calling task is cancelled), then shuts
    /// down gracefully (GOAWAY, let calls finish).
    public func runUntilTerminated(gracePeriod: Duration = .seconds(5)) async {
        await TerminationSignal.wait()
        await shutdownGracefully(timeout: gracePeriod)
    }

    /// Serves until the calling task is cancelled, then shuts down gracefully; for a
    /// process that runs several servers and waits for the signal once itself.
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

/// SIGTERM and SIGINT, taken over from their default of ending the process. Wait on it in
/// one place per process: two dispatch sources for one signal do not both see it.
public enum TerminationSignal {
    /// Returns at the first SIGTERM or SIGINT, or when the calling task is cancelled.
    public static func wait() async {
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
    }
}

import Locking

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
