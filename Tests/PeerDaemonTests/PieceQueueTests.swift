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
        // Nothing left to hand out: the slow parent would need ten times as long for its
        // piece as the fast one, so the fast one fetches it too, at once.
        guard case .piece(let stolen) = queue.take(for: "fast", now: t0 + .milliseconds(10)) else {
            Issue.record("the slow parent's piece was not taken over")
            return
        }
        #expect(stolen.number == c.number)
        #expect(queue.completed(stolen, by: "fast", elapsed: .milliseconds(45)))
        #expect(queue.isFinished)
        // The slow copy arrives later: it is not the first, so it is not reported again.
        #expect(!queue.completed(c, by: "slow", elapsed: .seconds(2)))
        if case .finished = queue.take(for: "slow") {} else { Issue.record("the queue is not finished") }
    }

    /// A parent that failed a piece gets nothing more, not even the piece it gave back,
    /// while the other parents go on; its sibling workers' pieces in flight still count.
    @Test func aDroppedParentIsGivenNothingMore() {
        let queue = PieceQueue(layout.pieces())
        guard case .piece(let bad) = queue.take(for: "liar"), case .piece(let other) = queue.take(for: "liar") else {
            Issue.record("pieces were not handed out")
            return
        }
        queue.drop("liar")
        queue.failed(bad, by: "liar")
        if case .finished = queue.take(for: "liar") {} else { Issue.record("a dropped parent was given a piece") }
        var numbers: Set<UInt32> = []
        for _ in 0..<3 {
            guard case .piece(let p) = queue.take(for: "honest") else {
                Issue.record("the honest parent was not given the rest")
                return
            }
            numbers.insert(p.number)
            #expect(queue.completed(p, by: "honest", elapsed: .milliseconds(40)))
        }
        #expect(numbers.contains(bad.number) && !numbers.contains(other.number))
        #expect(queue.completed(other, by: "liar", elapsed: .milliseconds(40)))
        #expect(queue.isFinished)
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
        if case .piece = queue.take(for: "two", now: t0 + .milliseconds(200)) {
            Issue.record("an equally fast parent duplicated a piece")
        }
        // Overdue (twice its usual time and more): the holder is stalled, and loses it.
        guard case .piece = queue.take(for: "two", now: t0 + .seconds(5)) else {
            Issue.record("a stalled parent kept its piece")
            return
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

@Suite struct PieceQueueLoadTests {
    let layout = PieceLayout(contentLength: 16 * 4_194_304, pieceLength: 4_194_304)

    @Test func aParentGetsPiecesInProportionToItsThroughput() {
        let queue = PieceQueue(layout.pieces(), streamsPerParent: 4)
        let t0 = ContinuousClock.now
        var held: [String: [PieceLayout.Piece]] = [:]
        // Before either has delivered, each may hold two (slow start).
        for parent in ["fast", "slow"] {
            while case .piece(let p) = queue.take(for: parent, now: t0) { held[parent, default: []].append(p) }
        }
        #expect(held["fast"]?.count == PieceQueue.unmeasuredLoad && held["slow"]?.count == PieceQueue.unmeasuredLoad)
        // Two pieces each together: the fast one at 100 MB/s in all, the slow one at 10 MB/s.
        for p in held["fast"] ?? [] { queue.completed(p, by: "fast", elapsed: .milliseconds(84)) }
        for p in held["slow"] ?? [] { queue.completed(p, by: "slow", elapsed: .milliseconds(840)) }
        var fast = 0, slow = 0
        while case .piece = queue.take(for: "fast", now: t0) { fast += 1 }
        while case .piece = queue.take(for: "slow", now: t0) { slow += 1 }
        #expect(fast == 4, "the fastest parent uses all its streams")
        #expect(slow == 1, "a parent a tenth as fast gets one piece at a time")
    }
}
