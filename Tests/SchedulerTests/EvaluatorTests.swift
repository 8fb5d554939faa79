import Testing
@testable import SchedulerCore

func facts(type: HostType = .normal, state: PeerState = .running, idc: String = "", location: String = "",
           maxTx: UInt64 = 0, tx: UInt64 = 0, uploaded: UInt64 = 0, pieces: Int = 0) -> ParentFacts {
    ParentFacts(hostType: type, state: state, idc: idc, location: location, maxTxBandwidth: maxTx, txBandwidth: tx,
                uploadContentLength: uploaded, concurrentUploadPieceCount: pieces)
}

@Suite struct EvaluatorTests {
    @Test(arguments: [
        ("", "a", 0.0), ("a", "", 0.0), ("a|b|c", "a|b|c", 1.0), ("A|B", "a|b", 1.0), ("a|b|c", "a|b|d", 0.4),
        ("a|b|c|d|e|f", "a|b|c|d|e|g", 1.0), ("x", "y", 0.0), ("a|b", "a", 0.2),
    ])
    func locationAffinityCountsTheCommonPrefixOutOfFive(_ a: String, _ b: String, _ expected: Double) {
        #expect(abs(Evaluator.locationAffinity(a, b) - expected) < 1e-9)
    }

    @Test func idcAffinityIsCaseInsensitiveAndZeroWhenUnknown() {
        #expect(Evaluator.idcAffinity("idc-1", "IDC-1") == 1)
        #expect(Evaluator.idcAffinity("idc-1", "idc-2") == 0)
        #expect(Evaluator.idcAffinity("", "") == 0)
    }

    @Test func seedsScoreHighestWhileStillFetching() {
        #expect(Evaluator.hostTypeScore(facts(type: .superSeed, state: .running)) == 1)
        #expect(Evaluator.hostTypeScore(facts(type: .superSeed, state: .succeeded)) == 0)
        #expect(Evaluator.hostTypeScore(facts(type: .normal, state: .succeeded)) == 0.5)
    }

    @Test func loadTermsFollowDragonflysFormulas() {
        let gbit: UInt64 = 1_000_000_000
        #expect(Evaluator.peakBandwidth(facts(maxTx: gbit, tx: gbit / 4)) == 0.75)
        #expect(Evaluator.peakBandwidth(facts(maxTx: gbit, tx: gbit)) == 0)
        #expect(Evaluator.peakBandwidth(facts(maxTx: 0)) == 0)
        #expect(Evaluator.bandwidthDuration(facts(maxTx: gbit, uploaded: 0)) == 1)
        // 3.75 GB at 1 Gbit/s is 30 s: half of the one-minute budget.
        #expect(abs(Evaluator.bandwidthDuration(facts(maxTx: gbit, uploaded: 3_750_000_000)) - 0.5) < 1e-9)
        // 10 Gbit/s needs about 74.5 concurrent 16 MiB pieces; 149 in flight halves the score.
        let tenGbit: UInt64 = 10 * gbit
        #expect(Evaluator.concurrency(facts(maxTx: tenGbit, pieces: 0)) == 1)
        #expect(Evaluator.concurrency(facts(maxTx: tenGbit, pieces: 10)) == 1)
        let needed = Double(tenGbit) / Double(Evaluator.assumedPieceBits)
        #expect(abs(Evaluator.concurrency(facts(maxTx: tenGbit, pieces: 149)) - needed / 149) < 1e-9)
    }

    @Test func totalWeightsLoadIdcLocationAndType() {
        let best = facts(type: .superSeed, state: .running, idc: "a", location: "x|y|z|w|v", maxTx: 1 << 40)
        #expect(abs(Evaluator.score(parent: best, childIDC: "a", childLocation: "x|y|z|w|v") - (0.6 * 1.0 + 0.2 + 0.1 + 0.1)) < 1e-9)
        let none = facts(type: .normal, state: .running)
        #expect(abs(Evaluator.score(parent: none, childIDC: "a", childLocation: "x") - 0.05) < 1e-9)
    }

    @Test(arguments: [PeerState.pending, .receivedNormal, .failed, .leave, .receivedEmpty])
    func onlyDownloadingOrDonePeersAreParents(_ state: PeerState) {
        #expect(Evaluator.isBadParent(state: state, costs: []))
    }

    @Test func slowLastPieceMakesABadParent() {
        #expect(!Evaluator.isBadParent(state: .running, costs: [10, 10, 199]))
        #expect(Evaluator.isBadParent(state: .running, costs: [10, 10, 201]))
        let steady = (0..<40).map { Double(100 + ($0 % 2 == 0 ? 1 : -1)) } + [102]
        #expect(!Evaluator.isBadParent(state: .running, costs: steady))
        var noisy = (0..<40).map { Double(100 + ($0 % 2 == 0 ? 10 : -10)) }
        noisy.append(131)
        #expect(Evaluator.isBadParent(state: .running, costs: noisy), "beyond mean + 3 sigma")
        #expect(!Evaluator.isBadParent(state: .succeeded, costs: [5]))
    }
}

@Suite struct PeerDAGTests {
    @Test func edgesThatWouldCloseACycleAreRefused() {
        var dag = PeerDAG()
        for id in ["a", "b", "c", "d"] { dag.add(id) }
        let ab = dag.addEdge(from: "a", to: "b")
        let bc = dag.addEdge(from: "b", to: "c")
        #expect(ab && bc)
        #expect(!dag.canAddEdge(from: "c", to: "a"), "c descends from a")
        #expect(!dag.canAddEdge(from: "a", to: "a"))
        #expect(!dag.canAddEdge(from: "a", to: "b"), "duplicate edge")
        #expect(!dag.canAddEdge(from: "a", to: "z"), "unknown vertex")
        #expect(dag.canAddEdge(from: "d", to: "a"))
        let removed = dag.removeInEdges("c")
        #expect(removed == ["b"])
        #expect(dag.canAddEdge(from: "c", to: "a"))
    }

    @Test func removingAVertexDropsItsEdgesBothWays() {
        var dag = PeerDAG()
        for id in ["p", "x", "y"] { dag.add(id) }
        _ = dag.addEdge(from: "p", to: "x")
        _ = dag.addEdge(from: "y", to: "p")
        dag.remove("p")
        #expect(dag.inDegree("x") == 0)
        #expect(dag.outDegree("y") == 0)
        #expect(!dag.contains("p"))
    }
}

@Suite struct StateMachineTests {
    @Test func peerLifecycleFollowsDragonfly() {
        #expect(PeerEvent.registerNormal.transition(from: .pending) == .receivedNormal)
        #expect(PeerEvent.registerNormal.transition(from: .running) == nil)
        #expect(PeerEvent.download.transition(from: .receivedNormal) == .running)
        #expect(PeerEvent.downloadBackToSource.transition(from: .running) == .backToSource)
        #expect(PeerEvent.downloadSucceeded.transition(from: .backToSource) == .succeeded)
        #expect(PeerEvent.downloadSucceeded.transition(from: .pending) == nil)
        #expect(PeerEvent.downloadFailed.transition(from: .succeeded) == .failed)
        #expect(PeerEvent.downloadFailed.transition(from: .leave) == nil)
        for state in PeerState.allCases where state != .leave {
            #expect(PeerEvent.leave.transition(from: state) == .leave)
        }
        #expect(PeerEvent.leave.transition(from: .leave) == nil)
    }

    @Test func taskLifecycleFollowsDragonfly() {
        #expect(TaskEvent.download.transition(from: .pending) == .running)
        #expect(TaskEvent.download.transition(from: .succeeded) == .running)
        #expect(TaskEvent.download.transition(from: .running) == nil)
        #expect(TaskEvent.downloadSucceeded.transition(from: .running) == .succeeded)
        #expect(TaskEvent.downloadFailed.transition(from: .succeeded) == nil)
    }
}
