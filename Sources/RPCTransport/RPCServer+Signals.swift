import Dispatch
#if canImport(Glibc)
import Glibc
#endif

extension RPCServer {
    /// Serves until SIGTERM or SIGINT, then shuts down gracefully (GOAWAY, let calls finish).
    public func runUntilTerminated(gracePeriod: Duration = .seconds(5)) async {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let sources = [SIGTERM, SIGINT].map { DispatchSource.makeSignalSource(signal: $0, queue: .global()) }
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            let once = OnceFlag()
            for source in sources {
                source.setEventHandler { if once.claim() { cont.resume() } }
                source.resume()
            }
        }
        for source in sources { source.cancel() }
        await shutdownGracefully(timeout: gracePeriod)
    }
}

import Synchronization

private final class OnceFlag: Sendable {
    private let done = Mutex(false)
    func claim() -> Bool {
        done.withLock { d in
            if d { return false }
            d = true
            return true
        }
    }
}
