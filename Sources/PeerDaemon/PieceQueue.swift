import DragonflyCommon
import PeerStorage
import Locking

/// The pieces one download still needs from its parents, handed out one at a time to
/// whichever parent's worker is free: a faster parent comes back sooner and so serves more
/// pieces. Each parent's speed is measured per piece; once nothing is left to hand out, an
/// idle worker of a fast parent takes over a piece that a slower or stalled parent has
/// held for longer than the fast one would need (BitTorrent's end game), and the first
/// copy to arrive wins.
final class PieceQueue: Sendable {
    struct Flight {
        var piece: PieceLayout.Piece
        var holders: Set<String>
        var since: ContinuousClock.Instant
    }

    private struct State {
        var pending: [PieceLayout.Piece]
        var inFlight: [UInt32: Flight] = [:]
        var done: Set<UInt32> = []
        /// Bytes per second each parent delivered one piece at (a moving average).
        var speed: [String: Double] = [:]
        /// Bytes per second each parent delivered in all, its pieces in flight together.
        var throughput: [String: Double] = [:]
        /// Pieces each parent is fetching now.
        var load: [String: Int] = [:]
        /// Parents that failed a piece: given nothing more in this download.
        var dropped: Set<String> = []
        let total: Int
    }

    /// What `take` found for a worker.
    enum Next {
        case piece(PieceLayout.Piece)
        /// Nothing to take now, but the download is not over: wait for `changes`, at most
        /// `wakeAfter` (when a held piece becomes worth taking over).
        case wait(wakeAfter: Duration)
        /// Every piece has arrived (or, for a dropped parent, nothing more is its to fetch).
        case finished
    }

    private let state: Locked<State>
    /// Signalled (key "") whenever a piece is handed back, lands, or a parent link learns
    /// something, so idle workers look again at once.
    let changes = ChangeSignal()
    /// A piece held this long by a parent with no measured speed may be taken over by one
    /// that has delivered before.
    let unmeasuredPatience: Duration
    /// Copies of one piece in flight at once, at most.
    static let maxHolders = 2

    /// Pieces a parent may fetch at once before it has delivered one (TCP's slow start, for
    /// pieces): a slow parent cannot take a large share of the task before it is measured.
    static let unmeasuredLoad = 2
    /// Pieces one parent may fetch at once at most (the workers it has).
    let streamsPerParent: Int

    init(_ pieces: [PieceLayout.Piece], streamsPerParent: Int = 8, unmeasuredPatience: Duration = .seconds(2)) {
        state = Locked(State(pending: pieces.reversed(), total: pieces.count))
        self.streamsPerParent = max(1, streamsPerParent)
        self.unmeasuredPatience = unmeasuredPatience
    }

    /// How many pieces `parent` may fetch at once: in proportion to its share of the best
    /// parent's throughput, at least one.
    private func loadLimit(_ parent: String, _ s: State) -> Int {
        guard let mine = s.throughput[parent], mine > 0 else { return Self.unmeasuredLoad }
        let best = s.throughput.values.max() ?? mine
        return max(1, min(streamsPerParent, Int((Double(streamsPerParent) * mine / best).rounded(.up))))
    }

    var isFinished: Bool { state.withLock { $0.done.count >= $0.total } }

    /// The next piece for `parent`, among those `isWanted` accepts (a Vortex parent has only
    /// announced some).
    func take(for parent: String, now: ContinuousClock.Instant = .now,
              where isWanted: (PieceLayout.Piece) -> Bool = { _ in true }) -> Next {
        state.withLock { s in
            if s.done.count >= s.total || s.dropped.contains(parent) { return .finished }
            if s.load[parent, default: 0] >= loadLimit(parent, s) {
                // Busy enough for its speed; a piece it finishes or a change elsewhere wakes it.
                return .wait(wakeAfter: .seconds(1))
            }
            if let i = s.pending.lastIndex(where: isWanted) {
                let piece = s.pending.remove(at: i)
                s.inFlight[piece.number] = Flight(piece: piece, holders: [parent], since: now)
                s.load[parent, default: 0] += 1
                return .piece(piece)
            }
            // End game: the held piece that this parent would overtake by the widest margin.
            var best: (number: UInt32, gain: Duration)?
            var soonest: Duration?
            for (number, flight) in s.inFlight where !flight.holders.contains(parent)
                && flight.holders.count < Self.maxHolders && isWanted(flight.piece) {
                let held = now - flight.since
                let threshold = takeoverThreshold(flight, by: parent, s)
                if held >= threshold {
                    let gain = held - threshold
                    if gain > (best?.gain ?? .seconds(-1)) { best = (number, gain) }
                } else {
                    soonest = min(soonest ?? .seconds(3600), threshold - held)
                }
            }
            if let best, var flight = s.inFlight[best.number] {
                flight.holders.insert(parent)
                s.inFlight[best.number] = flight
                s.load[parent, default: 0] += 1
                return .piece(flight.piece)
            }
            return .wait(wakeAfter: min(soonest ?? .seconds(1), .seconds(1)))
        }
    }

    /// How long `flight` must have been held before `parent` should fetch it too. A holder
    /// that should take markedly longer than `parent` loses it at once (the copy that
    /// arrives first wins); one about as fast only once it is overdue (stalled).
    private func takeoverThreshold(_ flight: Flight, by parent: String, _ s: State) -> Duration {
        let length = Double(flight.piece.length)
        guard let mine = s.speed[parent], mine > 0 else { return unmeasuredPatience * 2 }
        let myTime = length / mine
        guard let theirs = flight.holders.compactMap({ s.speed[$0] }).max(), theirs > 0 else {
            // The holder has delivered nothing yet: give it twice what this parent needs.
            return duration(seconds: myTime * 2)
        }
        let theirTime = length / theirs
        if theirTime > myTime * 1.5 { return .zero }
        return duration(seconds: theirTime * 2 + myTime)
    }

    /// The piece arrived from `parent` after `elapsed`. False when another parent's copy
    /// arrived first (the caller then reports nothing).
    @discardableResult
    func completed(_ piece: PieceLayout.Piece, by parent: String, elapsed: Duration) -> Bool {
        let first = state.withLock { s -> Bool in
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let together = s.load[parent, default: 1]
            s.load[parent] = max(0, together - 1)
            if seconds > 0 {
                let rate = Double(piece.length) / seconds
                s.speed[parent] = s.speed[parent].map { $0 * 0.7 + rate * 0.3 } ?? rate
                let total = rate * Double(max(1, together))
                s.throughput[parent] = s.throughput[parent].map { $0 * 0.7 + total * 0.3 } ?? total
            }
            s.inFlight.removeValue(forKey: piece.number)
            return s.done.insert(piece.number).inserted
        }
        changes.signal("")
        return first
    }

    /// `parent` could not deliver the piece (call once per piece it held): it goes back to
    /// the others, unless another parent still fetches it or it has arrived.
    func failed(_ piece: PieceLayout.Piece, by parent: String) {
        state.withLock { s in
            s.load[parent] = max(0, s.load[parent, default: 1] - 1)
            guard !s.done.contains(piece.number), var flight = s.inFlight[piece.number],
                  flight.holders.remove(parent) != nil else { return }
            if flight.holders.isEmpty {
                s.inFlight.removeValue(forKey: piece.number)
                s.pending.append(piece)
            } else {
                s.inFlight[piece.number] = flight
            }
        }
        changes.signal("")
    }

    /// `parent` failed a piece (a wrong digest, an error, a stall): none of its workers is
    /// given another piece in this download, as the download blocklists it. Call before
    /// handing its pieces back, so a sibling worker cannot take one back to the same parent.
    func drop(_ parent: String) {
        state.withLock { _ = $0.dropped.insert(parent) }
        changes.signal("")
    }

    /// True once the piece has arrived from any parent.
    func isDone(_ number: UInt32) -> Bool { state.withLock { $0.done.contains(number) } }

    /// The measured speed of a parent, in bytes per second (for logs and tests).
    func speed(of parent: String) -> Double? { state.withLock { $0.speed[parent] } }
}

/// A measured time as a Duration; speeds come from the network, so anything odd is clamped.
private func duration(seconds value: Double) -> Duration {
    guard value.isFinite, value > 0 else { return .zero }
    return .nanoseconds(Int64(min(value, 86_400) * 1e9))
}
