import Foundation
import Testing
import GeneratedAPI
import RPCCore
@testable import SchedulerCore

/// The persistent cache registry without sockets: imports, parents, replica shortfalls,
/// hosts that leave, the TTL, and the snapshot a restarted scheduler loads.
@Suite struct PersistentCacheRegistryTests {
    static let task = String(repeating: "ab", count: 32)

    static func host(_ id: String, idc: String = "", location: String = "") -> Common_V2_Host {
        Common_V2_Host.with { h in
            h.id = id
            h.ip = "127.0.0.1"
            h.network = Common_V2_Network.with { $0.idc = idc; $0.location = location }
        }
    }

    static func started(replicas: UInt64 = 2, ttl: Int64 = 60, host: String = "h1") -> Scheduler_V2_UploadPersistentCacheTaskStartedRequest {
        .with {
            $0.hostId = host
            $0.taskId = task
            $0.peerId = "importer"
            $0.persistentReplicaCount = replicas
            $0.pieceLength = 4 << 20
            $0.contentLength = 9 << 20
            $0.pieceCount = 3
            $0.ttl = Google_Protobuf_Duration(Duration.seconds(ttl))
        }
    }

    @Test func anImportedTaskIsShortOfReplicasUntilAnotherHostHoldsOne() async throws {
        let registry = PersistentCacheRegistry()
        let hosts = ["h1": Self.host("h1"), "h2": Self.host("h2")]
        try await registry.uploadStarted(Self.started())
        // Uploading: no one may fetch it yet, and a second import of it is refused.
        await #expect(throws: RPCError.self) { try await registry.register(hostID: "h2", taskID: Self.task, peerID: "p2", persistent: true, hosts: hosts) }
        await #expect(throws: RPCError.self) { try await registry.uploadStarted(Self.started()) }
        let task = try await registry.uploadFinished(taskID: Self.task, peerID: "importer")
        #expect(task.state == "Succeeded" && task.currentPersistentReplicaCount == 1)

        let short = await registry.shortfalls()
        #expect(short.count == 1 && short[0].missing == 1 && short[0].occupied == ["h1"])
        let parents = try await registry.register(hostID: "h2", taskID: Self.task, peerID: "p2", persistent: true, hosts: hosts)
        #expect(parents?.map(\.id) == ["importer"])
        #expect(parents?.first?.host?.id == "h1")
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
        let registry = PersistentCacheRegistry()
        let hosts = ["h1": Self.host("h1"), "h2": Self.host("h2")]
        try await registry.uploadStarted(Self.started(replicas: 2))
        _ = try await registry.uploadFinished(taskID: Self.task, peerID: "importer")
        _ = try await registry.register(hostID: "h2", taskID: Self.task, peerID: "cached", persistent: false, hosts: hosts)
        await registry.peerFinished(taskID: Self.task, peerID: "cached")
        let short = await registry.shortfalls()
        #expect(short.first?.promote.map(\.peerID) == ["cached"] && short.first?.missing == 0)
        await registry.markPersistent(taskID: Self.task, peerID: "cached")
        #expect(await registry.shortfalls().isEmpty)
    }

    @Test func parentsInTheSameIDCComeFirstAndFailedOrBlockedOnesNotAtAll() async throws {
        let registry = PersistentCacheRegistry(candidateParentLimit: 2)
        let hosts = ["h1": Self.host("h1", idc: "x"), "h2": Self.host("h2", idc: "y"), "h3": Self.host("h3", idc: "y"), "h4": Self.host("h4", idc: "y")]
        try await registry.uploadStarted(Self.started(replicas: 4))
        _ = try await registry.uploadFinished(taskID: Self.task, peerID: "importer")
        for (peer, host) in [("p2", "h2"), ("p3", "h3")] {
            _ = try await registry.register(hostID: host, taskID: Self.task, peerID: peer, persistent: true, hosts: hosts)
            await registry.peerFinished(taskID: Self.task, peerID: peer)
        }
        await registry.peerFailed(taskID: Self.task, peerID: "p3")
        let parents = try await registry.register(hostID: "h4", taskID: Self.task, peerID: "p4", persistent: true, hosts: hosts)
        #expect(parents?.map(\.id) == ["p2", "importer"])
        let rescheduled = try await registry.reschedule(taskID: Self.task, peerID: "p4", excluding: ["p2"], hosts: hosts)
        #expect(rescheduled.map(\.id) == ["importer"])
        await #expect(throws: RPCError.self) {
            try await registry.reschedule(taskID: Self.task, peerID: "p4", excluding: ["importer"], hosts: hosts)
        }
    }

    @Test func theTTLEndsTheTaskEverywhereInTheRegistry() async throws {
        let registry = PersistentCacheRegistry()
        let start = Date()
        try await registry.uploadStarted(Self.started(ttl: 10), now: start)
        _ = try await registry.uploadFinished(taskID: Self.task, peerID: "importer", now: start)
        #expect(try await registry.stat(taskID: Self.task, now: start.addingTimeInterval(9)).state == "Succeeded")
        await #expect(throws: RPCError.self) { try await registry.stat(taskID: Self.task, now: start.addingTimeInterval(10)) }
        #expect(await registry.shortfalls().isEmpty)
    }

    @Test func hostileNumbersAreRefused() async throws {
        let registry = PersistentCacheRegistry()
        for change in [{ (r: inout Scheduler_V2_UploadPersistentCacheTaskStartedRequest) in r.persistentReplicaCount = 0 },
                       { $0.persistentReplicaCount = .max }, { $0.pieceLength = 0 }, { $0.pieceLength = .max },
                       { $0.contentLength = .max }, { $0.pieceCount = .max }, { $0.ttl = Google_Protobuf_Duration(seconds: -1, nanos: 0) },
                       { $0.ttl = Google_Protobuf_Duration(seconds: .max, nanos: 0) }, { $0.ttl = nil }, { $0.taskId = "../x" },
                       { $0.hostId = String(repeating: "h", count: 300) }] {
            var r = Self.started()
            change(&r)
            await #expect(throws: RPCError.self) { try await registry.uploadStarted(r) }
        }
    }

    @Test func aSnapshotRestoresTasksAndPeersButNotExpiredOnes() async throws {
        let registry = PersistentCacheRegistry()
        let hosts = ["h1": Self.host("h1"), "h2": Self.host("h2")]
        try await registry.uploadStarted(Self.started(ttl: 100))
        _ = try await registry.uploadFinished(taskID: Self.task, peerID: "importer")
        _ = try await registry.register(hostID: "h2", taskID: Self.task, peerID: "p2", persistent: true, hosts: hosts)
        await registry.peerFinished(taskID: Self.task, peerID: "p2")
        let saved = try #require(await registry.snapshotIfChanged())
        #expect(await registry.snapshotIfChanged() == nil)

        let restored = PersistentCacheRegistry()
        #expect(await restored.restore(saved) == 1)
        let task = try await restored.stat(taskID: Self.task)
        #expect(task.currentPersistentReplicaCount == 2 && task.pieceCount == 3 && task.ttl?.seconds == 100)
        #expect(try await restored.statPeer(taskID: Self.task, peerID: "p2", hosts: hosts).state == "Succeeded")
        #expect(await PersistentCacheRegistry().restore(saved, now: Date().addingTimeInterval(101)) == 0)
        #expect(await PersistentCacheRegistry().restore(Data("{\"version\":1,\"tasks\":[{\"id\":\"../x\"}]}".utf8)) == 0)
        #expect(await PersistentCacheRegistry().restore(Data([0xff, 0x00])) == 0)
    }
}
