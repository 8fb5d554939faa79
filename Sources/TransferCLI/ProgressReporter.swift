import Foundation
import GeneratedAPI

/// What dfget (or dfcache) tells the user while it downloads: a redrawn bar on a terminal, a few plain
/// lines otherwise (logs, CI), nothing with `--quiet`. Both say where the bytes came from,
/// which is the question a Dragonfly user has: did the peers carry it, or the origin?
public final class ProgressReporter: @unchecked Sendable {
    public enum Mode: Sendable { case silent, bar, lines }

    public enum Source: Sendable {
        case peer, origin, cache
        public init(_ traffic: Common_V2_TrafficType?) {
            switch traffic {
            case .remotePeer?: self = .peer
            case .localPeer?: self = .cache
            default: self = .origin
            }
        }
    }

    let mode: Mode
    let program: String
    private let began = ContinuousClock.now
    private var total: UInt64 = 0
    private var bytes: [Source: UInt64] = [:]
    private var lastDraw: ContinuousClock.Instant?
    private var nextLineAt = 0.25

    public init(mode: Mode, program: String = "dfget") {
        self.mode = mode
        self.program = program
    }

    public var done: UInt64 { bytes.values.reduce(0, +) }

    public func started(total: UInt64) {
        self.total = total
        draw(force: true)
    }

    public func piece(length: UInt64, source: Source) {
        bytes[source, default: 0] += length
        draw(force: false)
    }

    public func finish() {
        switch mode {
        case .silent: return
        case .bar:
            draw(force: true)
            write("\n")
        case .lines: break
        }
        let seconds = elapsed
        write("\(program): \(Self.size(done)) in \(String(format: "%.1f", seconds)) s (\(Self.size(rate(seconds)))/s); \(shares)\n")
    }

    private var elapsed: Double {
        let d = ContinuousClock.now - began
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    private func rate(_ seconds: Double) -> UInt64 { seconds > 0 ? UInt64(Double(done) / seconds) : 0 }

    /// "62% from peers, 38% from the origin, 0% from the local cache".
    var shares: String {
        let sum = max(done, 1)
        func pct(_ s: Source) -> Int { Int((Double(bytes[s] ?? 0) / Double(sum) * 100).rounded()) }
        return "\(pct(.peer))% from peers, \(pct(.origin))% from the origin, \(pct(.cache))% from the local cache"
    }

    private func draw(force: Bool) {
        switch mode {
        case .silent: return
        case .bar:
            let now = ContinuousClock.now
            if !force, let last = lastDraw, now - last < .milliseconds(100) { return }
            lastDraw = now
            write("\r" + barLine() + "\u{1B}[K")
        case .lines:
            guard total > 0 else { return }
            let fraction = Double(done) / Double(total)
            guard fraction >= nextLineAt, fraction < 1 else { return }
            while nextLineAt <= fraction { nextLineAt += 0.25 }
            write("\(program): \(Int(fraction * 100))% \(Self.size(done)) of \(Self.size(total)); \(shares)\n")
        }
    }

    private func barLine() -> String {
        let seconds = elapsed
        let speed = rate(seconds)
        guard total > 0 else { return "\(Self.size(done))  \(Self.size(speed))/s" }
        let fraction = min(1, Double(done) / Double(total))
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let eta = speed > 0 ? Self.clock(Double(total - min(done, total)) / Double(speed)) : "--:--"
        let peers = Int((Double(bytes[.peer] ?? 0) / Double(max(done, 1)) * 100).rounded())
        return "[\(bar)] \(Int(fraction * 100))% \(Self.size(done))/\(Self.size(total)) \(Self.size(speed))/s ETA \(eta) peers \(peers)%"
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

    public static func size(_ n: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n), i = 0
        while v >= 1024, i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(n) B" : String(format: "%.1f", v) + " " + units[i]
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
