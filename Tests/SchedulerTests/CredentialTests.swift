import Testing
import Synchronization
import DragonflyCommon
import GeneratedAPI
import RPCCore
@testable import SchedulerCore

/// Issue 17 item 6: a task's credentials stay with the peer that owns it. The scheduler
/// keeps no credential header and no URL signature, so StatTask, StatPeer, candidate
/// parents and the console cannot show them; only a triggered seed gets them, in passing.
@Suite struct CredentialTests {
    static let presigned = "https://bucket.s3.amazonaws.com/blob?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        + "&X-Amz-Credential=AKIDSECRETCRED%2F20260101&X-Amz-Signature=deadbeefsignature&X-Amz-Security-Token=SESSIONSECRET&part=1"
    static let secrets = ["Bearer topsecret", "session=cookiesecret", "apikeysecret", "AKIDSECRETCRED",
                          "deadbeefsignature", "SESSIONSECRET", "objsecret"]

    static func secretDownload() -> Common_V2_Download {
        var d = download(presigned)
        d.requestHeader = ["Authorization": "Bearer topsecret", "Cookie": "session=cookiesecret",
                           "X-Api-Key": "apikeysecret", "Accept": "application/octet-stream"]
        d.objectStorage = Common_V2_ObjectStorage.with { $0.accessKeySecret = "objsecret" }
        return d
    }

    static func leaks(_ text: String) -> [String] { secrets.filter { text.contains($0) } }

    @Test func statTaskStatPeerAndTheConsoleShowNoCredentials() async throws {
        let (engine, scheduling) = makeEngine()
        for h in ["h1", "h2"] { await engine.announceHost(host(h), interval: nil) }
        _ = try await engine.registerPeer(hostID: "h1", taskID: "t", peerID: "p1", download: Self.secretDownload(), stream: Inbox().stream)
        try await scheduling.scheduleCandidateParents(peerID: "p1")
        try await engine.backToSourceStarted(peerID: "p1")
        let child = Inbox()
        _ = try await engine.registerPeer(hostID: "h2", taskID: "t", peerID: "p2", download: Self.secretDownload(), stream: child.stream)
        try await scheduling.scheduleCandidateParents(peerID: "p2")

        let task = try await engine.statTask(taskID: "t")
        #expect(task.requestHeader == ["Accept": "application/octet-stream"])
        #expect(task.url.hasPrefix("https://bucket.s3.amazonaws.com/blob?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="))
        #expect(task.url.hasSuffix("&part=1"))
        #expect(Self.leaks("\(task)") == [])
        #expect(Self.leaks("\(try await engine.statPeer(peerID: "p1"))") == [])
        #expect(Self.leaks("\(child.all)") == [])
        let summaries = await engine.taskSummaries(limit: 10)
        #expect(summaries.map(\.url) == [task.url])
        #expect(Self.leaks("\(summaries)") == [])
    }

    /// The seed fetches the origin for the peer, so it is given what the peer sent.
    @Test func aTriggeredSeedStillGetsTheOriginalDownload() async throws {
        let (engine, _) = makeEngine()
        let sent = Mutex<[SeedDownload]>([])
        await engine.setSeedDownloader { request in sent.withLock { $0.append(request) } }
        await engine.announceHost(host("seed", type: 1), interval: nil)
        await engine.announceHost(host("h"), interval: nil)
        _ = try await engine.registerPeer(hostID: "h", taskID: "t", peerID: "p", download: Self.secretDownload(), stream: Inbox().stream)
        for _ in 0..<200 where sent.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
        let request = try #require(sent.withLock { $0.first })
        #expect(request.download.url == Self.presigned)
        #expect(request.download.requestHeader["Authorization"] == "Bearer topsecret")
        #expect(Self.leaks("\(try await engine.statTask(taskID: "t"))") == [])
    }
}
