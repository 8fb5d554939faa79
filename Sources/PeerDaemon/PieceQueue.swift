import DragonflyCommon
import PeerStorage
import Synchronization

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
        /// Bytes per second each parent delivered its pieces at (a moving average).
        var speed: [String: Double] = [:]
        let total: Int
    }

    /// What `take` found for a worker.
    enum Next {
        case piece(PieceLayout.Piece)
        /// Nothing to take now, but the download is not over: wait for `changes`, at most
        /// `wakeAfter` (when a held piece becomes worth taking over).
        case wait(wakeAfter: Duration)
        /// Every piece has arrived.
        case finished
    }

    private let state: Mutex<State>
    /// Signalled (key "") whenever a piece is handed back, lands, or a parent link learns
    /// something, so idle workers look again at once.
    let changes = ChangeSignal()
    /// A piece held this long by a parent with no measured speed may be taken over by one
    /// that has delivered before.
    let unmeasuredPatience: Duration
    /// Copies of one piece in flight at once, at most.
    static let maxHolders = 2

    init(_ pieces: [PieceLayout.Piece], unmeasuredPatience: Duration = .seconds(2)) {
        state = Mutex(State(pending: pieces.reversed(), total: pieces.count))
        self.unmeasuredPatience = unmeasuredPatience
    }

    var isFinished: Bool { state.withLock { $0.done.count >= $0.total } }

    /// The next piece for `parent`, among those `isWanted` accepts (a Vortex parent has only
    /// announced some).
    func take(for parent: String, now: ContinuousClock.Instant = .now,
              where isWanted: (PieceLayout.Piece) -> Bool = { _ in true }) -> Next {
        state.withLock { s in
            if s.done.count >= s.total { return .finished }
            if let i = s.pending.lastIndex(where: isWanted) {
                let piece = s.pending.remove(at: i)
                s.inFlight[piece.number] = Flight(piece: piece, holders: [parent], since: now)
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
                return .piece(flight.piece)
            }
            return .wait(wakeAfter: min(soonest ?? .seconds(1), .seconds(1)))
        }
    }

    /// How long `flight` must have been held before `parent` should fetch it too: the time
    /// `parent` needs for it, and at least as long as its current holder was expected to take.
    private func takeoverThreshold(_ flight: Flight, by parent: String, _ s: State) -> Duration {
        let length = Double(flight.piece.length)
        guard let mine = s.speed[parent], mine > 0 else { return unmeasuredPatience * 2 }
        let myTime = length / mine
        let theirs = flight.holders.compactMap { s.speed[$0] }.max()
        guard let theirs, theirs > 0 else { return max(unmeasuredPatience, duration(seconds: myTime * 2)) }
        // Taking over pays only when the holder is markedly slower; then wait for what it
        // should have needed, or for what this parent needs, whichever is longer.
        guard mine > theirs * 1.5 else { return .seconds(3600) }
        return duration(seconds: max(myTime, length / theirs))
    }

    /// The piece arrived from `parent` after `elapsed`. False when another parent's copy
    /// arrived first (the caller then reports nothing).
    @discardableResult
    func completed(_ piece: PieceLayout.Piece, by parent: String, elapsed: Duration) -> Bool {
        let first = state.withLock { s -> Bool in
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            if seconds > 0 {
                let rate = Double(piece.length) / seconds
                s.speed[parent] = s.speed[parent].map { $0 * 0.7 + rate * 0.3 } ?? rate
            }
            s.inFlight.removeValue(forKey: piece.number)
            return s.done.insert(piece.number).inserted
        }
        changes.signal("")
        return first
    }

    /// `parent` could not deliver the piece: it goes back to the others, unless another
    /// parent still fetches it or it has arrived.
    func failed(_ piece: PieceLayout.Piece, by parent: String) {
        state.withLock { s in
            guard !s.done.contains(piece.number), var flight = s.inFlight[piece.number] else { return }
            flight.holders.remove(parent)
            if flight.holders.isEmpty {
                s.inFlight.removeValue(forKey: piece.number)
                s.pending.append(piece)
            } else {
                s.inFlight[piece.number] = flight
            }
        }
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
