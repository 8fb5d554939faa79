import Testing
import Synchronization
import DragonflyCommon
import GeneratedAPI
import RPCCore
@testable import SchedulerCore

/// Numbers and headers a client chooses: the scheduler must neither trap on the one nor
/// show the other to anybody.
@Suite struct HostileInputTests {
    /// Issue 17 item 3: a parent registered with `piece_length` 2^60 that went back to
    /// source, then children with one concurrent piece each. The parent's bandwidth was
    /// `2^60 × 1 × 8 = 2^63` per child, a wrapping multiply followed by a checked add.
    @Test func hugePieceLengthSaturatesTheParentsBookkeeping() async throws {
        let (engine, scheduling) = makeEngine()
        for h in ["hp", "hc1", "hc2", "hc3"] { await engine.announceHost(host(h), interval: nil) }
        let parentDownload = Common_V2_Download.with {
            $0.url = "http://origin/huge"; $0.pieceLength = 1 << 60; $0.actualPieceLength = 1 << 60
            $0.actualContentLength = UInt64(Int64.max); $0.actualPieceCount = 8
        }
        let parent = Inbox()
        _ = try await engine.registerPeer(hostID: "hp", taskID: "t", peerID: "p", download: parentDownload, stream: parent.stream)
        try await scheduling.scheduleCandidateParents(peerID: "p")
        #expect(parent.lastIsBackToSource)
        try await engine.backToSourceStarted(peerID: "p")

        for (i, count) in [UInt32(1), 1, .max].enumerated() {
            let child = Inbox()
            var d = parentDownload
            d.concurrentPieceCount = count
            _ = try await engine.registerPeer(hostID: "hc\(i + 1)", taskID: "t", peerID: "c\(i)", download: d, stream: child.stream)
            try await scheduling.scheduleCandidateParents(peerID: "c\(i)")
            #expect(child.lastParents == ["p"])
        }
        let load = try #require(await engine.hostLoad("hp"))
        #expect(load.uploads == 3)
        #expect(load.txBandwidth == .max)
        #expect(load.contentLength == .max)
        #expect(load.pieceCount == 2 + Int(UInt32.max))
        #expect(await engine.bookkeepingProblems() == [])

        for i in 0..<3 { _ = await engine.deletePeer(peerID: "c\(i)") }
        let released = try #require(await engine.hostLoad("hp"))
        #expect(released.uploads == 0 && released.txBandwidth == 0 && released.contentLength == 0 && released.pieceCount == 0)
        #expect(await engine.bookkeepingProblems() == [])
    }

    /// Releasing an edge gives back what it took even after the task's lengths changed
    /// (a failed origin fetch resets them): the host must not stay "busy" for ever.
    @Test func releaseGivesBackWhatTheEdgeClaimed() async throws {
        let (engine, scheduling) = makeEngine()
        for h in ["hp", "hc"] { await engine.announceHost(host(h), interval: nil) }
        _ = try await engine.registerPeer(hostID: "hp", taskID: "t", peerID: "p", download: download(), stream: Inbox().stream)
        try await scheduling.scheduleCandidateParents(peerID: "p")
        try await engine.backToSourceStarted(peerID: "p")
        let child = Inbox()
        _ = try await engine.registerPeer(hostID: "hc", taskID: "t", peerID: "c", download: download(), stream: child.stream)
        try await scheduling.scheduleCandidateParents(peerID: "c")
        #expect(try #require(await engine.hostLoad("hp")).contentLength == 64 << 20)

        // A third peer's failed origin fetch makes the length unknown again.
        await engine.announceHost(host("hx"), interval: nil)
        _ = try await engine.registerPeer(hostID: "hx", taskID: "t", peerID: "x", download: download(), stream: Inbox().stream)
        try await engine.backToSourceStarted(peerID: "x")
        try await engine.downloadFailed(peerID: "x", backToSource: true)
        try await engine.downloadFinished(peerID: "c", backToSource: false)
        let load = try #require(await engine.hostLoad("hp"))
        #expect(load.uploads == 0 && load.contentLength == 0 && load.txBandwidth == 0)
        #expect(await engine.bookkeepingProblems() == [])
    }

    @Test func saturatingArithmetic() {
        #expect(UInt64.max.saturatingAdd(1) == .max)
        #expect((UInt64(1) << 63).saturatingAdd(UInt64(1) << 63) == .max)
        #expect(UInt64(1 << 60).saturatingMultiply(8) == 1 << 63)
        #expect(UInt64(1 << 60).saturatingMultiply(16) == .max)
        #expect(UInt64(3).flooredSubtract(5) == 0)
        #expect(Int.max.saturatingAdd(1) == .max)
        #expect(Int.min.saturatingAdd(-1) == .min)
        #expect(Int(2).flooredSubtract(5) == 0)
        #expect(Int.min.flooredSubtract(1) == 0)
        #expect(Int.max.flooredSubtract(-1) == .max)
    }

    /// 0, 2^63 and 2^64-1 in every number a host, a registration or a piece report carries.
    @Test func extremeNumbersEverywhereAreAnsweredNotTrapped() async throws {
        let (engine, scheduling) = makeEngine()
        for (i, n) in [UInt64(0), 1 << 63, .max].enumerated() {
            var h = host("h\(i)", type: UInt32(truncatingIfNeeded: n))
            h.port = Int32(truncatingIfNeeded: n)
            h.cpu = Common_V2_CPU.with { $0.logicalCount = UInt32(truncatingIfNeeded: n); $0.percent = .infinity }
            h.memory = Common_V2_Memory.with { $0.total = n; $0.available = n; $0.usedPercent = .nan }
            h.network = Common_V2_Network.with { $0.maxTxBandwidth = n; $0.txBandwidth = n; $0.maxRxBandwidth = n }
            let interval: Duration = i == 1 ? .seconds(Int64.min) : .seconds(Int64.max) + .nanoseconds(999_999_999)
            await engine.announceHost(h, interval: interval)
            await engine.announceHost(h, interval: interval)
        }
        for (i, n) in [UInt64(0), 1 << 63, .max].enumerated() {
            let d = Common_V2_Download.with {
                $0.url = "http://origin/x"; $0.pieceLength = n; $0.actualPieceLength = n; $0.actualContentLength = n == 0 ? 1 << 40 : n
                $0.actualPieceCount = n; $0.concurrentPieceCount = UInt32(truncatingIfNeeded: n)
                $0.range = Common_V2_Range.with { $0.start = n; $0.length = n }
            }
            let inbox = Inbox()
            _ = try await engine.registerPeer(hostID: "h\(i)", taskID: "t", peerID: "p\(i)", download: d, stream: inbox.stream)
            try await scheduling.scheduleCandidateParents(peerID: "p\(i)")
            try await engine.backToSourceStarted(peerID: "p\(i)")
            for number in [UInt32(0), 1 << 31, .max] {
                let piece = Common_V2_Piece.with {
                    $0.number = number; $0.offset = n; $0.length = n
                    $0.cost = Google_Protobuf_Duration(seconds: i == 1 ? .min : .max, nanos: i == 1 ? .min : .max)
                }
                _ = try? await engine.pieceFinished(peerID: "p\(i)", piece: piece, backToSource: true)
                _ = try? await engine.pieceFinished(peerID: "p\(i)", piece: piece, backToSource: false)
            }
        }
        let task = try await engine.statTask(taskID: "t")
        // The first registration's numbers stand; later ones only fill in an unknown length.
        #expect(task.contentLength == 1 << 40)
        #expect(task.pieceCount == 0)
        for i in 0..<3 { _ = try await engine.statPeer(peerID: "p\(i)") }
        #expect(await engine.taskSummaries(limit: 10).count == 1)
        #expect(await engine.listHosts(type: nil).count == 3)
        #expect(await engine.bookkeepingProblems() == [])
        await engine.collectPeers()
        await engine.collectHosts()
        await engine.collectTasks()
    }

    /// An interval of 2^63 seconds is taken as a day, so a silent host still ages out.
    @Test func hugeAnnounceIntervalsStillLetHostsAgeOut() async {
        let (engine, _) = makeEngine()
        await engine.announceHost(host("h"), interval: .seconds(Int64.max))
        await engine.ageForTesting(by: .seconds(3 * 24 * 3600))
        #expect(await engine.collectHosts() == ["h"])
    }

    @Test func piecesBeyondTheKnownCountAreRefused() async throws {
        let (engine, _) = makeEngine()
        await engine.announceHost(host("h"), interval: nil)
        let beyond = Common_V2_Piece.with { $0.number = 16; $0.length = 4 << 20 }
        var counted = download()
        counted.actualPieceCount = 16
        _ = try await engine.registerPeer(hostID: "h", taskID: "t2", peerID: "q", download: counted, stream: Inbox().stream)
        await #expect(throws: RPCError.self) { try await engine.pieceFinished(peerID: "q", piece: beyond, backToSource: true) }
        try await engine.pieceFinished(peerID: "q", piece: Common_V2_Piece.with { $0.number = 15; $0.content = [1, 2, 3] },
                                       backToSource: true)
        let pieces = try await engine.statTask(taskID: "t2").pieces
        #expect(pieces.map(\.number) == [15])
        #expect(pieces.first?.content == nil)
    }

    /// With no piece count to check against, a stream of made-up piece numbers is counted
    /// but only so many are kept.
    @Test func piecesKeptPerTaskAndPeerAreBounded() async throws {
        let (engine, _) = makeEngine()
        await engine.announceHost(host("h"), interval: nil)
        var unknown = download()
        unknown.actualContentLength = nil
        _ = try await engine.registerPeer(hostID: "h", taskID: "t", peerID: "p", download: unknown, stream: Inbox().stream)
        for n in 0..<UInt32(ReportBounds.maxTrackedPieces + 10) {
            try await engine.pieceFinished(peerID: "p", piece: Common_V2_Piece.with { $0.number = n }, backToSource: true)
        }
        #expect(try await engine.statTask(taskID: "t").pieces.count == ReportBounds.maxTrackedPieces)
        #expect(await engine.taskSummaries(limit: 1).first?.peers.first?.finishedPieceCount == UInt32(ReportBounds.maxTrackedPieces))
    }

    @Test func aPeerIDCannotMoveToAnotherTaskOrHost() async throws {
        let (engine, _) = makeEngine()
        for h in ["h1", "h2"] { await engine.announceHost(host(h), interval: nil) }
        _ = try await engine.registerPeer(hostID: "h1", taskID: "t1", peerID: "p", download: download(), stream: Inbox().stream)
        await #expect(throws: RPCError.self) {
            try await engine.registerPeer(hostID: "h1", taskID: "t2", peerID: "p", download: download(), stream: Inbox().stream)
        }
        await #expect(throws: RPCError.self) {
            try await engine.registerPeer(hostID: "h2", taskID: "t1", peerID: "p", download: download(), stream: Inbox().stream)
        }
    }
}
