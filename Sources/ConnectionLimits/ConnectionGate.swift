#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Locking

/// Admission of accepted connections: at most `perIP` open from one address and `total`
/// open in all. It is asked before any handler or nghttp2 session exists, so a refused
/// connection costs the server an accept and a close, nothing more.
public final class ConnectionGate: Sendable {
    public struct Refusal: Error, CustomStringConvertible {
        public let description: String
    }

    public let perIP: Int?
    public let total: Int
    private let state = Locked(State())

    private struct State {
        var open = 0
        var byIP: [String: Int] = [:]
    }

    public init(perIP: Int?, total: Int) {
        self.perIP = perIP
        self.total = total
    }

    /// Counts a connection from `ip` (nil for a unix socket, which has no address to
    /// limit) in, or says why it is refused. An admitted one must be `release`d once.
    public func admit(_ ip: String?) -> Refusal? {
        state.withLock { s in
            if s.open >= total {
                return Refusal(description: "\(s.open) connections open, the limit is \(total)")
            }
            if let ip, let perIP {
                let mine = s.byIP[ip, default: 0]
                if mine >= perIP { return Refusal(description: "\(mine) connections open from \(ip), the limit is \(perIP)") }
                s.byIP[ip] = mine + 1
            }
            s.open += 1
            return nil
        }
    }

    public func release(_ ip: String?) {
        state.withLock { s in
            s.open -= 1
            guard let ip, perIP != nil, let mine = s.byIP[ip] else { return }
            // Dropping the entry keeps the table as small as the set of connected addresses.
            if mine <= 1 { s.byIP[ip] = nil } else { s.byIP[ip] = mine - 1 }
        }
    }

    public var openConnections: Int { state.withLock { $0.open } }

    /// A total that leaves file descriptors for everything else a process opens (its files,
    /// its own outbound connections): the soft open-file limit less a tenth, at least 64.
    /// Past it a new client is closed at once instead of waiting in the backlog for an
    /// `accept` that keeps failing with EMFILE.
    public static var defaultTotal: Int {
        #if canImport(Glibc)
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            // RLIM_INFINITY is the largest value: clamped, it leaves the cap as good as off.
            let soft = Int(clamping: limit.rlim_cur)
            return max(16, soft - max(64, soft / 10))
        }
        #endif
        return 1 << 20
    }
}

/// Gives memory back to the system after a burst of connections. glibc keeps what a
/// thousand connections freed in its per-thread arenas (a flood of 20,000 left 360 MB
/// resident after every connection had closed), so once the number of open server
/// connections in the process has fallen well below a high-water mark, `malloc_trim(0)`
/// runs, off the event loops. One trim per rise and fall: it never runs at a high rate.
public enum HeapTrimmer {
    /// A rise smaller than this is ordinary traffic; trimming after it gains nothing.
    static let threshold = 128
    /// A flood's connections close over a moment; trimming once they have saves trimming
    /// at each step down, and returns what the last of them held too.
    static let delay: Duration = .seconds(1)

    private struct State {
        var open = 0
        var peak = 0
        var scheduled = false
        var trims = 0
    }
    private static let state = Locked(State())

    public static func opened() {
        state.withLock { s in
            s.open += 1
            s.peak = max(s.peak, s.open)
        }
    }

    public static func closed() {
        let start = state.withLock { s -> Bool in
            s.open -= 1
            // Half the peak gone and at least `threshold` connections fewer than it.
            guard !s.scheduled, s.peak - s.open >= threshold, s.open <= s.peak / 2 else { return false }
            s.scheduled = true
            return true
        }
        guard start else { return }
        let nanos = Int(delay.components.seconds) * 1_000_000_000 + Int(delay.components.attoseconds / 1_000_000_000)
        DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + .nanoseconds(nanos)) {
            state.withLock { s in
                s.scheduled = false
                s.peak = s.open  // the next trim needs a new rise
                s.trims += 1
            }
            trimNow()
        }
    }

    /// Trims run so far; for tests and diagnostics.
    static var trims: Int { state.withLock { $0.trims } }

    /// Returns free heap pages to the system. malloc_trim is glibc's, not in Swift's Glibc
    /// module, so it is looked up at run time; elsewhere (musl) this does nothing.
    static func trimNow() {
        #if canImport(Glibc)
        typealias Trim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(nil, "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
        #endif
    }
}
