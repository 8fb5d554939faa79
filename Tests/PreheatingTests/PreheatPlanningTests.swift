import GeneratedAPI
import Testing
@testable import Preheating

/// Which peers a preheat reaches and what it asks of them, without any peer.
@Suite struct PreheatPlanningTests {
    let hosts = [
        PreheatTarget(ip: "10.0.0.1", port: 65001, hostname: "seed-1", isSeed: true),
        PreheatTarget(ip: "10.0.0.2", port: 65001, hostname: "seed-2", isSeed: true),
        PreheatTarget(ip: "10.0.0.3", port: 65001, hostname: "node-3", isSeed: false),
        PreheatTarget(ip: "10.0.0.4", port: 65001, hostname: "node-4", isSeed: false),
        PreheatTarget(ip: "10.0.0.5", port: 65001, hostname: "node-5", isSeed: false),
    ]

    @Test func scopesDrawFromSeedsOrEveryone() {
        #expect(PeerSelection().choose(from: hosts, scope: .allSeedPeers).map(\.hostname) == ["seed-1", "seed-2"])
        #expect(PeerSelection().choose(from: hosts, scope: .singleSeedPeer).count == 2, "one is picked per item, later")
        #expect(PeerSelection().choose(from: hosts + hosts, scope: .allPeers).count == 5, "a host listed twice is one peer")
    }

    @Test func ipsThenCountOrPercentageNarrow() {
        #expect(PeerSelection(ips: ["10.0.0.3", "10.0.0.9"]).choose(from: hosts, scope: .allPeers).map(\.ip) == ["10.0.0.3"])
        #expect(PeerSelection(count: 2).choose(from: hosts, scope: .allPeers).count == 2)
        #expect(PeerSelection(count: 0).choose(from: hosts, scope: .allPeers).isEmpty)
        // 20 % of 5 is 1; 30 % rounds up to 2; a sliver is still one peer.
        #expect(PeerSelection(percentage: 20).choose(from: hosts, scope: .allPeers).count == 1)
        #expect(PeerSelection(percentage: 30).choose(from: hosts, scope: .allPeers).count == 2)
        #expect(PeerSelection(percentage: 0.001).choose(from: hosts, scope: .allPeers).count == 1)
        #expect(PeerSelection(percentage: 400).choose(from: hosts, scope: .allPeers).count == 5)
        #expect(PeerSelection(ips: ["10.0.0.1"], percentage: 50).choose(from: hosts, scope: .allPeers).count == 1)
    }

    @Test func singleSeedPeerGivesEachItemOneStablePeerAndSpreadsThem() {
        let seeds = PeerSelection().choose(from: hosts, scope: .singleSeedPeer)
        let items = (0..<200).map { PreheatPlan.Item(url: "http://origin/blob-\($0)") }
        let plan = PreheatPlan(items: items, download: Common_V2_Download(), scope: .singleSeedPeer, selection: PeerSelection(),
                               concurrentTaskCount: 8, timeout: .seconds(60))
        let work = plan.work(on: seeds)
        #expect(work.count == items.count)
        #expect(work.map(\.target) == plan.work(on: seeds.reversed()).map(\.target), "the choice does not depend on order")
        let perSeed = Dictionary(grouping: work, by: \.target.hostname).mapValues(\.count)
        #expect(perSeed.count == 2 && perSeed.values.allSatisfy { $0 > 60 }, "\(perSeed)")
        #expect(plan.work(on: []).isEmpty)
        let everyone = PreheatPlan(items: items, download: Common_V2_Download(), scope: .allPeers, selection: PeerSelection(),
                                   concurrentTaskCount: 8, timeout: .seconds(60))
        #expect(everyone.work(on: hosts).count == items.count * hosts.count)
    }

    @Test func eachRequestKeepsTheSharedFieldsAndTheTaskIDAPullComputes() throws {
        var shared = Common_V2_Download()
        shared.tag = "t"
        shared.enableTaskIdBasedBlobDigest = true
        shared.requestHeader = ["Authorization": "Bearer x"]
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        let plan = PreheatPlan(items: [PreheatPlan.Item(url: "http://r/v2/a/blobs/\(digest)", digest: digest)], download: shared,
                               scope: .allPeers, selection: PeerSelection(), concurrentTaskCount: 99, timeout: .seconds(5))
        let request = plan.request(for: plan.items[0])
        #expect(request.tag == "t" && request.digest == digest && request.requestHeader["Authorization"] == "Bearer x")
        #expect(try PreheatPlan.taskID(of: request) == String(repeating: "ab", count: 32), "a blob task is named by its digest")
        #expect(plan.concurrentTaskCount == 64, "bounded")
        var byURL = request
        byURL.enableTaskIdBasedBlobDigest = false
        #expect(try PreheatPlan.taskID(of: byURL).count == 64)
        #expect(try PreheatPlan.taskID(of: byURL) != String(repeating: "ab", count: 32))
    }

    @Test func hostileInputIsRefused() {
        #expect(PreheatChecks.refusal(url: "http://origin/file", isImage: false) == nil)
        #expect(PreheatChecks.refusal(url: "registry.example/team/app:v1", isImage: true) == nil)
        #expect(PreheatChecks.refusal(url: "registry.example/team/app:v1", isImage: false) != nil)
        #expect(PreheatChecks.refusal(url: "ftp://origin/file", isImage: true) != nil)
        #expect(PreheatChecks.refusal(url: "http://origin/a b", isImage: false) != nil)
        #expect(PreheatChecks.refusal(url: "http://origin/" + String(repeating: "a", count: 5000), isImage: false) != nil)
        #expect(PreheatChecks.refusal(headers: ["X-Ok": "v"]) == nil)
        #expect(PreheatChecks.refusal(headers: ["X-Split": "v\r\nHost: evil"]) != nil)
        #expect(PreheatChecks.refusal(headers: ["Bad Name": "v"]) != nil)
        #expect(PreheatChecks.refusal(headers: Dictionary(uniqueKeysWithValues: (0..<51).map { ("h\($0)", "v") })) != nil)
    }
}
