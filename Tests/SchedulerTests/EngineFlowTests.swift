import Testing
import Synchronization
import DragonflyCommon
import GeneratedAPI
import RPCCore
@testable import SchedulerCore

/// Collects what the scheduler sends one peer.
final class Inbox: Sendable {
    private let items = Mutex<[Scheduler_V2_AnnouncePeerResponse]>([])
    var all: [Scheduler_V2_AnnouncePeerResponse] { items.withLock { $0 } }
    var stream: PeerStream { PeerStream { r in self.items.withLock { $0.append(r) } } }
    var lastParents: [String] {
        guard case .normalTaskResponse(let n)? = all.last?.response else { return [] }
        return n.candidateParents.map(\.id)
    }
    var lastIsBackToSource: Bool {
        if case .needBackToSourceResponse? = all.last?.response { return true }
        return false
    }
}

func makeEngine(_ configure: (inout SchedulerSettings) -> Void = { _ in }) -> (SchedulerEngine, Scheduling) {
    var s = SchedulerSettings()
    s.retryInterval = .milliseconds(1)
    configure(&s)
    let engine = SchedulerEngine(settings: s, metrics: SchedulerMetrics(registry: MetricsRegistry(prefix: "t_")))
    return (engine, Scheduling(engine: engine, retryInterval: s.retryInterval))
}

func host(_ id: String, type: UInt32 = 0) -> Common_V2_Host {
    Common_V2_Host.with { $0.id = id; $0.ip = "127.0.0.1"; $0.hostname = id; $0.port = 65001; $0.type = type }
}

func download(_ url: String = "http://origin/blob", length: UInt64? = 64 << 20) -> Common_V2_Download {
    Common_V2_Download.with { $0.url = url; $0.actualContentLength = length; $0.actualPieceLength = 4 << 20 }
}

@Suite struct EngineFlowTests {
    @Test func firstPeerGoesToSourceSecondIsOfferedTheFirst() async throws {
        let (engine, scheduling) = makeEngine()
        for h in ["h1", "h2"] { await engine.announceHost(host(h), interval: nil) }
        let first = Inbox(), second = Inbox()

        #expect(try await engine.registerPeer(hostID: "h1", taskID: "t", peerID: "p1", download: download(), stream: first.stream) == .schedule)
        try await scheduling.scheduleCandidateParents(peerID: "p1")
        #expect(first.lastIsBackToSource)
        try await engine.backToSourceStarted(peerID: "p1")

        _ = try await engine.registerPeer(hostID: "h2", taskID: "t", peerID: "p2", download: download(), stream: second.stream)
        try await scheduling.scheduleCandidateParents(peerID: "p2")
        #expect(second.lastParents == ["p1"])
        let task = try await engine.statTask(taskID: "t")
        #expect(task.state == "Running")
        #expect(task.peerCount == 2)
    }

    @Test func emptyContentGetsAnEmptyTaskAnswer() async throws {
        let (engine, _) = makeEngine()
        await engine.announceHost(host("h1"), interval: nil)
        let outcome = try await engine.registerPeer(hostID: "h1", taskID: "t", peerID: "p", download: download(length: 0), stream: Inbox().stream)
        #expect(outcome == .emptyTask)
        #expect(try await engine.statPeer(peerID: "p").state == "ReceivedEmpty")
    }

    @Test func unknownHostIsNotFound() async {
        let (engine, _) = makeEngine()
        await #expect(throws: RPCError.self) {
            try await engine.registerPeer(hostID: "nope", taskID: "t", peerID: "p", download: download(), stream: Inbox().stream)
        }
    }

    @Test func backToSourceCountLimitsOriginFetches() async throws {
        let (engine, scheduling) = makeEngine { $0.backToSourceCount = 1; $0.retryLimit = 3; $0.retryBackToSourceLimit = 2 }
        var outcomes: [String] = []
        // All on one host, so no peer can be another's parent: only the origin is left.
        await engine.announceHost(host("h"), interval: nil)
        for i in 0..<4 {
            let inbox = Inbox()
            _ = try await engine.registerPeer(hostID: "h", taskID: "t", peerID: "p\(i)", download: download(), stream: inbox.stream)
            do {
                try await scheduling.scheduleCandidateParents(peerID: "p\(i)")
                if inbox.lastIsBackToSource {
                    outcomes.append("source")
                    try await engine.backToSourceStarted(peerID: "p\(i)")
                } else {
                    outcomes.append("parents")
                }
            } catch let e as RPCError {
                outcomes.append(e.code == .failedPrecondition ? "failed" : "other")
            }
        }
        // Dragonfly lets limit + 1 go to the origin (the check is <= before adding); the
        // rest, with no parent to be had, fail after retryLimit rounds.
        #expect(outcomes == ["source", "source", "failed", "failed"])
        #expect(await engine.counts().peers == 4)
    }

    @Test func failedParentIsBlockedAndReplaced() async throws {
        let (engine, scheduling) = makeEngine()
        for h in ["h1", "h2", "h3"] { await engine.announceHost(host(h), interval: nil) }
        for (i, h) in ["h1", "h2"].enumerated() {
            _ = try await engine.registerPeer(hostID: h, taskID: "t", peerID: "s\(i)", download: download(), stream: Inbox().stream)
            try await engine.backToSourceStarted(peerID: "s\(i)")
        }
        let child = Inbox()
        _ = try await engine.registerPeer(hostID: "h3", taskID: "t", peerID: "c", download: download(), stream: child.stream)
        try await scheduling.scheduleCandidateParents(peerID: "c")
        #expect(Set(child.lastParents) == ["s0", "s1"])
        try await engine.downloadStarted(peerID: "c")
        #expect(try await engine.pieceFailed(peerID: "c", parentID: "s0", temporary: true, backToSource: false))
        try await scheduling.scheduleCandidateParents(peerID: "c")
        #expect(child.lastParents == ["s1"])
    }

    @Test func deletingAParentOrphansItsChildren() async throws {
        let (engine, scheduling) = makeEngine()
        for h in ["h1", "h2"] { await engine.announceHost(host(h), interval: nil) }
        _ = try await engine.registerPeer(hostID: "h1", taskID: "t", peerID: "p", download: download(), stream: Inbox().stream)
        try await engine.backToSourceStarted(peerID: "p")
        let child = Inbox()
        _ = try await engine.registerPeer(hostID: "h2", taskID: "t", peerID: "c", download: download(), stream: child.stream)
        try await scheduling.scheduleCandidateParents(peerID: "c")
        try await engine.downloadStarted(peerID: "c")
        let orphans = await engine.deletePeer(peerID: "p")
        #expect(orphans == ["c"])
        #expect(await engine.reschedulable(orphans) == ["c"])
    }

    @Test func uploadSlotsAreClaimedAndReleased() async throws {
        let (engine, scheduling) = makeEngine()
        for h in ["h1", "h2"] { await engine.announceHost(host(h), interval: nil) }
        _ = try await engine.registerPeer(hostID: "h1", taskID: "t", peerID: "p", download: download(), stream: Inbox().stream)
        try await engine.backToSourceStarted(peerID: "p")
        _ = try await engine.registerPeer(hostID: "h2", taskID: "t", peerID: "c", download: download(), stream: Inbox().stream)
        try await scheduling.scheduleCandidateParents(peerID: "c")
        #expect(await engine.uploadsInProgress(hostID: "h1") == 1)
        try await engine.downloadFinished(peerID: "c", backToSource: false)
        #expect(await engine.uploadsInProgress(hostID: "h1") == 0)
    }
}

@Suite struct GarbageCollectionTests {
    @Test func failedPeersLeaveThenGoAndEmptyTasksFollow() async throws {
        let (engine, _) = makeEngine()
        await engine.announceHost(host("h1"), interval: nil)
        _ = try await engine.registerPeer(hostID: "h1", taskID: "t", peerID: "p", download: download(), stream: Inbox().stream)
        try await engine.downloadFailed(peerID: "p", backToSource: false)
        #expect(await engine.collectPeers().isEmpty, "first pass moves the failed peer to Leave")
        #expect(try await engine.statPeer(peerID: "p").state == "Leave")
        #expect(await engine.collectPeers() == ["p"])
        #expect(await engine.collectTasks() == ["t"])
    }

    @Test func idlePeersExpireByTTLAndSilentHostsByInterval() async throws {
        let (engine, _) = makeEngine { $0.peerTTL = .seconds(60) }
        await engine.announceHost(host("h1"), interval: .seconds(30))
        _ = try await engine.registerPeer(hostID: "h1", taskID: "t", peerID: "p", download: download(), stream: Inbox().stream)
        await engine.ageForTesting(by: .seconds(45))
        #expect(await engine.collectPeers().isEmpty)
        #expect(try await engine.statPeer(peerID: "p").state == "ReceivedNormal")
        #expect(await engine.collectHosts().isEmpty, "45 s is within two 30 s announce intervals")
        await engine.ageForTesting(by: .seconds(30))
        _ = await engine.collectPeers()
        #expect(try await engine.statPeer(peerID: "p").state == "Leave")
        #expect(await engine.collectHosts() == ["h1"])
        #expect(await engine.counts().peers == 0)
    }
}
