import GeneratedAPI
import Testing
@testable import PeerDaemon

/// The download engine's choices between parents and the origin, answer by answer of the
/// scheduler, without a scheduler or a network.
@Suite struct ScheduleFollowerTests {
    func peer(_ id: String) -> Common_V2_Peer { Common_V2_Peer.with { $0.id = id } }

    func normal(_ ids: String...) -> Scheduler_V2_AnnouncePeerResponse.ResponseOneof {
        .normalTaskResponse(Scheduler_V2_NormalTaskResponse.with { $0.candidateParents = ids.map(peer) })
    }

    let backToSource = Scheduler_V2_AnnouncePeerResponse.ResponseOneof.needBackToSourceResponse(
        Scheduler_V2_NeedBackToSourceResponse.with { $0.descriptionField = "no parent" })

    @Test func parentsAreFetchedFromAndTheFirstRoundAnnouncesTheStart() {
        var f = ScheduleFollower(disableBackToSource: false)
        #expect(f.step(on: normal("a", "b")) == .fetch(parents: [peer("a"), peer("b")], announceStarted: true))
        #expect(f.after(offered: [peer("a"), peer("b")], failed: [], piecesMissing: false) == .finished)
    }

    @Test func theOriginWhenTheSchedulerSaysSoUnlessBackToSourceIsDisabled() {
        var allowed = ScheduleFollower(disableBackToSource: false)
        #expect(allowed.step(on: backToSource) == .backToSource)
        var disabled = ScheduleFollower(disableBackToSource: true)
        guard case .fail(let why) = disabled.step(on: backToSource) else {
            Issue.record("a peer that may not go back to source went")
            return
        }
        #expect(why.contains("no parent") && why.contains("disabled"))
    }

    @Test func anEmptyTaskFinishesAndOtherAnswersAreIgnored() {
        var f = ScheduleFollower(disableBackToSource: false)
        #expect(f.step(on: .emptyTaskResponse(Scheduler_V2_EmptyTaskResponse())) == .finishEmpty)
        #expect(f.step(on: nil) == .ignore)
    }

    @Test func aParentThatFailedIsNeverOfferedAgain() {
        var f = ScheduleFollower(disableBackToSource: false)
        _ = f.step(on: normal("a", "b"))
        // b failed and pieces are missing: the scheduler heard of the failure and answers.
        #expect(f.after(offered: [peer("a"), peer("b")], failed: ["b"], piecesMissing: true) == .awaitAnswer)
        #expect(f.step(on: normal("b", "c")) == .fetch(parents: [peer("c")], announceStarted: false))
        #expect(f.blocked.keys.sorted() == ["b"])
    }

    @Test func missingPiecesWithNoFailureAskForOtherParentsNamingTheBlockedOnes() {
        var f = ScheduleFollower(disableBackToSource: false)
        _ = f.step(on: normal("a", "b"))
        _ = f.after(offered: [peer("a"), peer("b")], failed: ["a"], piecesMissing: true)
        _ = f.step(on: normal("b"))
        guard case .reschedule(let request) = f.after(offered: [peer("b")], failed: [], piecesMissing: true) else {
            Issue.record("no reschedule")
            return
        }
        #expect(request.candidateParents.map(\.id) == ["a"])
        #expect(request.descriptionField == "parents failed: a")
    }

    @Test func aSchedulerThatKeepsAnsweringIsGivenUpOnAfterEightRounds() {
        var f = ScheduleFollower(disableBackToSource: false)
        for round in 1...ScheduleFollower.maxRounds {
            #expect(f.step(on: normal("p\(round)")) == .fetch(parents: [peer("p\(round)")], announceStarted: round == 1))
            _ = f.after(offered: [peer("p\(round)")], failed: ["p\(round)"], piecesMissing: true)
        }
        guard case .giveUp = f.step(on: normal("q")) else {
            Issue.record("a ninth round was followed")
            return
        }
    }
}

/// A scheduler's answer may list any number of parents; each one fetched from gets workers
/// and a kept connection, so a round takes a bounded number of distinct ones.
@Suite struct ParentBoundTests {
    func peers(_ ids: [String]) -> [Common_V2_Peer] { ids.map { id in Common_V2_Peer.with { $0.id = id } } }

    @Test func aRoundTakesAtMostTheBoundOfDistinctParents() {
        let offered = peers((0..<100_000).map { "p\($0)" })
        #expect(Daemon.boundedParents(offered).map(\.id) == (0..<Daemon.maxParentsPerRound).map { "p\($0)" })
    }

    @Test func aParentListedTwiceIsOneParent() {
        #expect(Daemon.boundedParents(peers(["a", "b", "a", "a", "c", "b"])).map(\.id) == ["a", "b", "c"])
    }
}
