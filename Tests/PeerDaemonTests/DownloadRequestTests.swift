import DragonflyCommon
import Foundation
import GeneratedAPI
import Testing
@testable import PeerDaemon

/// The pure decisions a download makes before it fetches anything: which bytes a request
/// wants, what its task is called, which running fetch may serve it.
@Suite struct DownloadRequestTests {
    func download(range: (UInt64, UInt64)? = nil, header: String? = nil) -> Common_V2_Download {
        var d = Common_V2_Download()
        d.url = "http://origin.example/f.bin"
        if let range { d.range = Common_V2_Range.with { $0.start = range.0; $0.length = range.1 } }
        if let header { d.requestHeader = ["range": header] }
        return d
    }

    @Test func aRangeFieldIsClippedToTheTask() throws {
        #expect(try Daemon.requestedRange(download(range: (10, 5)), contentLength: 100) == ByteRange(first: 10, last: 14))
        #expect(try Daemon.requestedRange(download(range: (90, 50)), contentLength: 100) == ByteRange(first: 90, last: 99))
        #expect(try Daemon.requestedRange(download(), contentLength: 100) == nil)
    }

    @Test(arguments: [(100, 1), (0, 0), (UInt64.max, 1)] as [(UInt64, UInt64)])
    func aRangeOutsideTheTaskIsUnsatisfiable(range: (UInt64, UInt64)) {
        #expect(throws: UnsatisfiableRange.self) { try Daemon.requestedRange(download(range: range), contentLength: 100) }
    }

    @Test func aRangeHeaderIsReadOnceTheLengthIsKnown() throws {
        #expect(try Daemon.requestedRange(download(header: "bytes=-10"), contentLength: 100) == ByteRange(first: 90, last: 99))
        #expect(try Daemon.requestedRange(download(header: "bytes=5-"), contentLength: 100) == ByteRange(first: 5, last: 99))
        // Several ranges are answered whole, as the mirror always did.
        #expect(try Daemon.requestedRange(download(header: "bytes=0-1,5-6"), contentLength: 100) == nil)
        #expect(throws: UnsatisfiableRange.self) { try Daemon.requestedRange(download(header: "bytes=100-"), contentLength: 100) }
        // The field wins over the header, as upstream's dfdaemon reads them.
        var both = download(range: (1, 1), header: "bytes=50-")
        both.requestHeader = ["Range": "bytes=50-"]
        #expect(try Daemon.requestedRange(both, contentLength: 100) == ByteRange(first: 1, last: 1))
    }

    @Test func taskIDsAsUpstreamNamesThem() throws {
        var d = download()
        let byURL = try Daemon.taskID(of: d)
        #expect(byURL == (try TaskID.standard(url: d.url)))
        d.contentForCalculatingTaskId = "model-v1"
        #expect(try Daemon.taskID(of: d) == Hashing.sha256Hex(Array("model-v1".utf8)))
        let hex = String(repeating: "ab", count: 32)
        var blob = Common_V2_Download()
        blob.url = "https://registry.example/v2/team/app/blobs/sha256:\(hex)?ns=docker.io"
        #expect(try Daemon.taskID(of: blob) != hex, "only when asked")
        blob.enableTaskIdBasedBlobDigest = true
        #expect(try Daemon.taskID(of: blob) == hex)
        blob.url = "https://registry.example/v2/team/app/manifests/sha256:\(hex)"
        #expect(try Daemon.taskID(of: blob) != hex, "a manifest is not a blob")
        blob.url = "https://registry.example/blobs/sha256:\(hex)"
        #expect(try Daemon.taskID(of: blob) != hex, "no /v2/ before /blobs/")
    }

    @Test func aFetchServesOnlyRequestsItsPiecesCover() {
        let whole = FetchJob(wanted: nil, keepWithoutWaiters: false)
        let part = FetchJob(wanted: [1, 2], keepWithoutWaiters: false)
        #expect(whole.covers(nil) && whole.covers([7]))
        #expect(part.covers([1]) && part.covers([1, 2]))
        #expect(!part.covers([2, 3]) && !part.covers(nil))
    }

    @Test func uploadCountsTrackPiecesInFlightAndServed() {
        let counts = UploadCounts()
        counts.begin("t")
        counts.begin("t")
        #expect(counts.of("t") == (2, 0))
        counts.end("t", served: true)
        counts.end("t", served: false)
        #expect(counts.of("t") == (0, 1))
        #expect(counts.of("other") == (0, 0))
    }
}

@Suite struct TrafficStatsTests {
    @Test func bytesAreCountedBySourceSavedAndReadBack() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("stats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let stats = TrafficStats(directory: dir)
        stats.record(.origin, bytes: 100, task: "a")
        stats.record(.peer, bytes: 300, task: "b")
        stats.record(.cache, bytes: 50, task: "a")
        #expect(stats.total == TrafficStats.Bytes(peer: 300, origin: 100, cache: 50))
        #expect(stats.total.peerRatio == 0.75)
        stats.save()
        let again = TrafficStats(directory: dir)
        #expect(again.total == stats.total, "totals survive a restart")
        again.record(.peer, bytes: 1, task: "c")
        #expect(again.total.peer == 301)
    }

    @Test func onlyTheLatestTasksAreKeptButTotalsCountAll() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("stats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let stats = TrafficStats(directory: dir)
        for i in 0..<(TrafficStats.maxTasks + 5) { stats.record(.origin, bytes: 1, task: "t\(i)") }
        stats.save()
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("stats.json"))) as? [String: Any]
        let tasks = json?["tasks"] as? [String: Any]
        #expect(tasks?.count == TrafficStats.maxTasks)
        #expect(tasks?["t0"] == nil && tasks?["t\(TrafficStats.maxTasks + 4)"] != nil)
        #expect(stats.total.origin == UInt64(TrafficStats.maxTasks + 5))
    }
}
