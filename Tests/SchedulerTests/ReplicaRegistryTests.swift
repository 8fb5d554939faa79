import Foundation
import Testing
import GeneratedAPI
import RPCCore
@testable import SchedulerCore

/// The registry of kept tasks without sockets: imports, parents, replica shortfalls, hosts
/// that leave, the TTL, the origin for persistent tasks, and the snapshot a restarted
/// scheduler loads.
@Suite struct ReplicaRegistryTests {
    static let task = String(repeating: "ab", count: 32)

    static func host(_ id: String, idc: String = "", location: String = "") -> Common_V2_Host {
        Common_V2_Host.with { h in
            h.id = id
            h.ip = "127.0.0.1"
            h.network = Common_V2_Network.with { $0.idc = idc; $0.location = location }
        }
    }

    static func kept(replicas: UInt64 = 2, ttl: Int64 = 60, url: String? = nil) -> KeptTask {
        KeptTask(id: task, replicaCount: replicas, url: url, pieceLength: 4 << 20, contentLength: 9 << 20, pieceCount: 3, ttl: .seconds(ttl))
    }

    static func parents(_ r: ReplicaRegistry.Registration) -> [String]? {
        if case .parents(let p) = r { return p.map(\.id) }
        return nil
    }

    @Test func anImportedTaskIsShortOfReplicasUntilAnotherHostHoldsOne() async throws {
        let registry = ReplicaRegistry()
        let hosts = ["h1": Self.host("h1"), "h2": Self.host("h2")]
        try await registry.uploadStarted(Self.kept(), hostID: "h1", peerID: "importer")
        // Uploading: no one may fetch it yet, and a second import of it is refused.
        await #expect(throws: RPCError.self) { try await registry.register(hostID: "h2", taskID: Self.task, peerID: "p2", persistent: true, hosts: hosts) }
        await #expect(throws: RPCError.self) { try await registry.uploadStarted(Self.kept(), hostID: "h1", peerID: "importer") }
        let task = try await registry.uploadFinished(taskID: Self.task, peerID: "importer")
        #expect(task.state == "Succeeded" && task.currentPersistentReplicaCount == 1)

        let short = await registry.shortfalls()
        #expect(short.count == 1 && short[0].missing == 1 && short[0].occupied == ["h1"])
        let registration = try await registry.register(hostID: "h2", taskID: Self.task, peerID: "p2", persistent: true, hosts: hosts)
        guard case .parents(let parents) = registration else { Issue.record("no parents"); return }
        #expect(parents.map(\.id) == ["importer"])
        #expect(parents.first?.host?.id == "h1")
        await registry.peerStarted(taskID: Self.task, peerID: "p2")
        await registry.peerFinished(taskID: Self.task, peerID: "p2")
        #expect(await registry.shortfalls().isEmpty)
        #expect(try await registry.stat(taskID: Self.task).currentPersistentReplicaCount == 2)

        // h1 leaves: its copy is forgotten and the task is short again, h2 holding the other.
        #expect(await registry.forgetHosts(except: ["h2"]) == 1)
        let again = await registry.shortfalls()
        #expect(again.count == 1 && again[0].missing == 1 && again[0].occupied == ["h2"])
    }

    @Test func aCachedCopyIsPromotedBeforeANewOneIsFetched() async throws {
        let registry = ReplicaRegistry()
        let hosts = ["h1": Self.host("h1"), "h2": Self.host("h2")]
        try await registry.uploadStarted(Self.kept(replicas: 2), hostID: "h1", peerID: "importer")
        _ = try await registry.uploadFinished(taskID: Self.task, peerID: "importer")
        _ = try await registry.register(hostID: "h2", taskID: Self.task, peerID: "cached", persistent: false, hosts: hosts)
        await registry.peerFinished(taskID: Self.task, peerID: "cached")
        let short = await registry.shortfalls()
        #expect(short.first?.promote.map(\.peerID) == ["cached"] && short.first?.missing == 0)
        await registry.markPersistent(taskID: Self.task, peerID: "cached")
        #expect(await registry.shortfalls().isEmpty)
    }

    @Test func parentsInTheSameIDCComeFirstAndFailedOrBlockedOnesNotAtAll() async throws {
        let registry = ReplicaRegistry(candidateParentLimit: 2)
        let hosts = ["h1": Self.host("h1", idc: "x"), "h2": Self.host("h2", idc: "y"), "h3": Self.host("h3", idc: "y"), "h4": Self.host("h4", idc: "y")]
        try await registry.uploadStarted(Self.kept(replicas: 4), hostID: "h1", peerID: "importer")
        _ = try await registry.uploadFinished(taskID: Self.task, peerID: "importer")
        for (peer, host) in [("p2", "h2"), ("p3", "h3")] {
            _ = try await registry.register(hostID: host, taskID: Self.task, peerID: peer, persistent: true, hosts: hosts)
            await registry.peerFinished(taskID: Self.task, peerID: peer)
        }
        await registry.peerFailed(taskID: Self.task, peerID: "p3")
        let registration = try await registry.register(hostID: "h4", taskID: Self.task, peerID: "p4", persistent: true, hosts: hosts)
        #expect(Self.parents(registration) == ["p2", "importer"])
        let rescheduled = try await registry.reschedule(taskID: Self.task, peerID: "p4", excluding: ["p2"], hosts: hosts)
        #expect(Self.parents(rescheduled) == ["importer"])
        await #expect(throws: RPCError.self) {
            try await registry.reschedule(taskID: Self.task, peerID: "p4", excluding: ["importer"], hosts: hosts)
        }
    }

    /// An upload that went silent (its importer died, or a caller only claimed the id) does
    /// not hold the id for its whole TTL.
    @Test func aStaleUploadGivesWayToANewOne() async throws {
        let registry = ReplicaRegistry()
        let start = Date()
        try await registry.uploadStarted(Self.kept(ttl: 86_400), hostID: "h1", peerID: "squatter", now: start)
        await #expect(throws: RPCError.self) {
            try await registry.uploadStarted(Self.kept(), hostID: "h2", peerID: "importer", now: start.addingTimeInterval(60))
        }
        try await registry.uploadStarted(Self.kept(), hostID: "h2", peerID: "importer", now: start.addingTimeInterval(3601))
        #expect(try await registry.uploadFinished(taskID: Self.task, peerID: "importer", now: start.addingTimeInterval(3602)).state == "Succeeded")
    }

    @Test func theTTLEndsTheTaskEverywhereInTheRegistry() async throws {
        let registry = ReplicaRegistry()
        let start = Date()
        try await registry.uploadStarted(Self.kept(ttl: 10), hostID: "h1", peerID: "importer", now: start)
        _ = try await registry.uploadFinished(taskID: Self.task, peerID: "importer", now: start)
        #expect(try await registry.stat(taskID: Self.task, now: start.addingTimeInterval(9)).state == "Succeeded")
        await #expect(throws: RPCError.self) { try await registry.stat(taskID: Self.task, now: start.addingTimeInterval(10)) }
        #expect(await registry.shortfalls().isEmpty)
    }

    @Test func hostileNumbersAreRefused() async throws {
        let registry = ReplicaRegistry()
        for change in [{ (t: inout KeptTask) in t.replicaCount = 0 }, { $0.replicaCount = .max }, { $0.pieceLength = 0 },
                       { $0.pieceLength = .max }, { $0.contentLength = .max }, { $0.pieceCount = .max },
                       { $0.ttl = .zero }, { $0.ttl = .seconds(Int64.max) }, { $0.id = "../x" }] {
            var t = Self.kept()
            change(&t)
            await #expect(throws: RPCError.self) { try await registry.uploadStarted(t, hostID: "h1", peerID: "importer") }
        }
        await #expect(throws: RPCError.self) {
            try await registry.uploadStarted(Self.kept(), hostID: String(repeating: "h", count: 300), peerID: "importer")
        }
        #expect(throws: RPCError.self) { try ReplicaRegistry.checkedTTL(Google_Protobuf_Duration(seconds: -1, nanos: 0)) }
        #expect(throws: RPCError.self) { try ReplicaRegistry.checkedTTL(nil) }
    }

    /// A persistent task has an origin: with no copy to offer, a download goes there, and
    /// may do so while the importer is still uploading.
    @Test func aPersistentTaskWithoutCopiesSendsTheDownloadToItsOrigin() async throws {
        let registry = ReplicaRegistry(noun: "persistent task")
        let hosts = ["h1": Self.host("h1"), "h2": Self.host("h2")]
        try await registry.uploadStarted(Self.kept(url: "http://origin/f"), hostID: "h1", peerID: "importer")
        let early = try await registry.register(hostID: "h2", taskID: Self.task, peerID: "p2", persistent: false, hosts: hosts)
        guard case .backToSource = early else { Issue.record("expected the origin, got \(early)"); return }
        _ = try await registry.uploadFinished(taskID: Self.task, peerID: "importer")
        let later = try await registry.register(hostID: "h2", taskID: Self.task, peerID: "p3", persistent: false, hosts: hosts)
        #expect(Self.parents(later) == ["importer"])
        let asked = try await registry.register(hostID: "h2", taskID: Self.task, peerID: "p4", persistent: false, needBackToSource: true, hosts: hosts)
        guard case .backToSource = asked else { Issue.record("need_back_to_source was not honoured"); return }
    }

    @Test func aSnapshotRestoresTasksAndPeersButNotExpiredOnes() async throws {
        let registry = ReplicaRegistry()
        let hosts = ["h1": Self.host("h1"), "h2": Self.host("h2")]
        try await registry.uploadStarted(Self.kept(ttl: 100), hostID: "h1", peerID: "importer")
        _ = try await registry.uploadFinished(taskID: Self.task, peerID: "importer")
        _ = try await registry.register(hostID: "h2", taskID: Self.task, peerID: "p2", persistent: true, hosts: hosts)
        await registry.peerFinished(taskID: Self.task, peerID: "p2")
        let saved = try #require(await registry.snapshotIfChanged())
        #expect(await registry.snapshotIfChanged() == nil)

        let restored = ReplicaRegistry()
        #expect(await restored.restore(saved) == 1)
        let task = try await restored.stat(taskID: Self.task)
        #expect(task.currentPersistentReplicaCount == 2 && task.pieceCount == 3 && task.ttl == .seconds(100))
        #expect(try await restored.statPeer(taskID: Self.task, peerID: "p2", hosts: hosts).state == "Succeeded")
        #expect(await ReplicaRegistry().restore(saved, now: Date().addingTimeInterval(101)) == 0)
        #expect(await ReplicaRegistry().restore(Data("{\"version\":1,\"tasks\":[{\"id\":\"../x\"}]}".utf8)) == 0)
        #expect(await ReplicaRegistry().restore(Data([0xff, 0x00])) == 0)
    }
}
