import DragonflyCommon
import Testing
@testable import PeerDaemon

/// Pieces go to whichever parent is free; once none is left to hand out, a fast parent
/// takes over what a slow or stalled one holds, and only the first copy counts.
@Suite struct PieceQueueTests {
    let layout = PieceLayout(contentLength: 4 * 4_194_304, pieceLength: 4_194_304)

    @Test func aFastParentTakesOverASlowParentsPieceInTheEndGame() {
        let queue = PieceQueue(layout.pieces())
        let t0 = ContinuousClock.now
        // Both parents have delivered one piece: the fast one at 100 MB/s, the slow at 10 MB/s.
        guard case .piece(let a) = queue.take(for: "fast", now: t0), case .piece(let b) = queue.take(for: "slow", now: t0) else {
            Issue.record("pieces were not handed out")
            return
        }
        #expect(queue.completed(a, by: "fast", elapsed: .milliseconds(42)))
        #expect(queue.completed(b, by: "slow", elapsed: .milliseconds(420)))
        guard case .piece(let c) = queue.take(for: "slow", now: t0), case .piece(let d) = queue.take(for: "fast", now: t0) else {
            Issue.record("pieces were not handed out")
            return
        }
        #expect(queue.completed(d, by: "fast", elapsed: .milliseconds(42)))
        // Nothing left to hand out: the fast parent waits until the slow one has held its
        // piece for longer than the slow one should need, then fetches it too.
        guard case .wait(let wake) = queue.take(for: "fast", now: t0 + .milliseconds(100)) else {
            Issue.record("the piece was taken over too early")
            return
        }
        #expect(wake > .zero && wake <= .seconds(1))
        guard case .piece(let stolen) = queue.take(for: "fast", now: t0 + .milliseconds(500)) else {
            Issue.record("the stalled piece was not taken over")
            return
        }
        #expect(stolen.number == c.number)
        #expect(queue.completed(stolen, by: "fast", elapsed: .milliseconds(45)))
        #expect(queue.isFinished)
        // The slow copy arrives later: it is not the first, so it is not reported again.
        #expect(!queue.completed(c, by: "slow", elapsed: .seconds(2)))
        if case .finished = queue.take(for: "slow") {} else { Issue.record("the queue is not finished") }
    }

    @Test func aParentAsFastAsTheHolderDoesNotDuplicateItsPiece() {
        let queue = PieceQueue(Array(layout.pieces().prefix(3)))
        let t0 = ContinuousClock.now
        guard case .piece(let a) = queue.take(for: "one", now: t0), case .piece(let b) = queue.take(for: "two", now: t0) else {
            Issue.record("pieces were not handed out")
            return
        }
        queue.completed(a, by: "one", elapsed: .milliseconds(100))
        queue.completed(b, by: "two", elapsed: .milliseconds(100))
        guard case .piece = queue.take(for: "one", now: t0) else { Issue.record("no piece"); return }
        if case .piece = queue.take(for: "two", now: t0 + .seconds(5)) {
            Issue.record("an equally fast parent duplicated a piece")
        }
    }

    @Test func aFailedPieceGoesBackUnlessAnotherParentStillHasIt() {
        let queue = PieceQueue(Array(layout.pieces().prefix(1)), unmeasuredPatience: .milliseconds(10))
        let t0 = ContinuousClock.now
        guard case .piece(let p) = queue.take(for: "a", now: t0) else { Issue.record("no piece"); return }
        // "b" has no speed yet: it takes over only after twice the patience.
        if case .piece = queue.take(for: "b", now: t0 + .milliseconds(15)) { Issue.record("taken over before it was due") }
        guard case .piece(let again) = queue.take(for: "b", now: t0 + .milliseconds(30)) else {
            Issue.record("not taken over")
            return
        }
        #expect(again.number == p.number)
        queue.failed(p, by: "a")
        // Still held by "b": not handed out again before it is due.
        if case .piece = queue.take(for: "c", now: t0 + .milliseconds(15)) { Issue.record("handed out while b holds it") }
        queue.failed(p, by: "b")
        guard case .piece(let back) = queue.take(for: "c", now: t0 + .milliseconds(16)) else {
            Issue.record("a piece no parent holds was not handed out again")
            return
        }
        #expect(back.number == p.number)
    }
}
