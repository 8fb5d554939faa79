import Dispatch
import DragonflyCommon
import GeneratedAPI
import RPCCore
import SchedulerCore

/// Sequences of what unauthenticated clients may send a scheduler (host announcements,
/// registrations, piece and peer reports, deletions, stats, garbage collection), decoded
/// from the input, with numbers drawn mostly from the edges (0, 2^31, 2^32, 2^60, 2^63,
/// 2^64-1). No sequence may trap, and the upload bookkeeping must stay consistent after
/// every step (`SchedulerEngine.bookkeepingProblems`).
enum SchedulerTarget {
    static let metrics = SchedulerMetrics(registry: MetricsRegistry(prefix: "fuzz_"))
    /// Each step is at least one byte; more would only repeat the same paths slower.
    static let maxSteps = 64

    static func run(_ input: UnsafeRawBufferPointer) {
        let bytes = Array(input.prefix(4096))
        let done = DispatchSemaphore(value: 0)
        Task {
            await drive(bytes)
            done.signal()
        }
        done.wait()
    }

    static func drive(_ bytes: [UInt8]) async {
        var settings = SchedulerSettings()
        settings.retryLimit = 2
        settings.retryBackToSourceLimit = 1
        settings.backToSourceCount = 2
        settings.normalHostUploadLimit = 3
        let engine = SchedulerEngine(settings: settings, metrics: metrics)
        let scheduling = Scheduling(engine: engine, retryInterval: .zero)
        var input = FuzzInput(bytes)
        for _ in 0..<maxSteps where !input.isEmpty {
            await step(&input, engine, scheduling)
            let problems = await engine.bookkeepingProblems()
            precondition(problems.isEmpty, "scheduler bookkeeping: \(problems)")
        }
    }

    static func step(_ input: inout FuzzInput, _ engine: SchedulerEngine, _ scheduling: Scheduling) async {
        let peer = "p\(input.byte() % 8)"
        switch input.byte() % 15 {
        case 0:
            var host = Common_V2_Host()
            host.id = "h\(input.byte() % 4)"
            host.type = UInt32(truncatingIfNeeded: input.number())
            host.ip = "127.0.0.1"
            host.port = Int32(truncatingIfNeeded: input.number())
            host.disableShared = input.bool()
            host.network = Common_V2_Network.with {
                $0.maxTxBandwidth = input.number(); $0.txBandwidth = input.number(); $0.maxRxBandwidth = input.number()
                $0.idc = input.bool() ? "idc" : nil; $0.location = input.bool() ? "a|b|c|d|e|f" : nil
            }
            host.memory = Common_V2_Memory.with { $0.total = input.number(); $0.usedPercent = Double(bitPattern: input.number()) }
            let interval = input.bool() ? nil : Google_Protobuf_Duration(seconds: Int64(bitPattern: input.number()),
                                                                         nanos: Int32(truncatingIfNeeded: input.number())).duration
            await engine.announceHost(host, interval: interval)
        case 1:
            var d = Common_V2_Download()
            d.url = input.bool() ? "http://origin/blob?X-Amz-Signature=s" : "http://origin/other"
            d.requestHeader = input.bool() ? ["Authorization": "Bearer x", "Accept": "*/*"] : [:]
            if input.bool() { d.pieceLength = input.number() }
            if input.bool() { d.actualPieceLength = input.number() }
            if input.bool() { d.actualContentLength = input.number() }
            if input.bool() { d.actualPieceCount = input.number() }
            if input.bool() { d.concurrentPieceCount = UInt32(truncatingIfNeeded: input.number()) }
            if input.bool() { d.range = Common_V2_Range.with { $0.start = input.number(); $0.length = input.number() } }
            d.needBackToSource = input.bool()
            d.priority = Common_V2_Priority(rawValue: Int32(input.byte() % 8))
            let registered = try? await engine.registerPeer(hostID: "h\(input.byte() % 4)", taskID: "t\(input.byte() % 2)",
                                                            peerID: peer, download: d, stream: PeerStream { _ in })
            if registered == .schedule { try? await scheduling.scheduleCandidateParents(peerID: peer) }
        case 2: try? await engine.downloadStarted(peerID: peer)
        case 3: try? await engine.backToSourceStarted(peerID: peer)
        case 4:
            let piece = Common_V2_Piece.with {
                $0.number = UInt32(truncatingIfNeeded: input.number()); $0.offset = input.number(); $0.length = input.number()
                $0.parentId = input.bool() ? "p\(input.byte() % 8)" : nil
                $0.cost = Google_Protobuf_Duration(seconds: Int64(bitPattern: input.number()), nanos: Int32(truncatingIfNeeded: input.number()))
            }
            try? await engine.pieceFinished(peerID: peer, piece: piece, backToSource: input.bool())
        case 5:
            let again = try? await engine.pieceFailed(peerID: peer, parentID: "p\(input.byte() % 8)", temporary: input.bool(),
                                                      backToSource: input.bool())
            if again == true { try? await scheduling.scheduleCandidateParents(peerID: peer) }
        case 6: try? await engine.downloadFinished(peerID: peer, backToSource: input.bool())
        case 7: try? await engine.downloadFailed(peerID: peer, backToSource: input.bool())
        case 8:
            try? await engine.reschedule(peerID: peer, excluding: ["p\(input.byte() % 8)"])
            try? await scheduling.scheduleCandidateParents(peerID: peer)
        case 9: _ = await engine.deletePeer(peerID: peer)
        case 10: _ = try? await engine.deleteHost("h\(input.byte() % 4)")
        case 11: _ = try? await engine.deleteTask(hostID: "h\(input.byte() % 4)", taskID: "t\(input.byte() % 2)")
        case 12:
            _ = try? await engine.statTask(taskID: "t\(input.byte() % 2)")
            _ = try? await engine.statPeer(peerID: peer)
            _ = await engine.taskSummaries(limit: Int(input.byte()))
            _ = await engine.listHosts(type: input.bool() ? nil : UInt32(truncatingIfNeeded: input.number()))
        case 13:
            await engine.ageForTesting(by: .seconds(Int64(input.byte()) * 3600))
            await engine.collectPeers()
            await engine.collectTasks()
            await engine.collectHosts()
        default:
            await engine.peerStreamFailed(peerID: peer)
            await engine.detachStream(peerID: peer)
        }
    }
}

/// Reads the input front to back; past its end every read is zero.
struct FuzzInput {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isEmpty: Bool { position >= bytes.count }

    mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func bool() -> Bool { byte() & 1 == 1 }

    static let edges: [UInt64] = [0, 1, 8, 4 << 20, 1 << 31, 1 << 32, 1 << 60, 1 << 63, .max - 1, .max,
                                  UInt64(Int64.max), UInt64(UInt32.max), 128, 129]

    /// Mostly an edge value; sometimes eight raw bytes.
    mutating func number() -> UInt64 {
        let b = byte()
        if Int(b) < Self.edges.count * 16 { return Self.edges[Int(b) % Self.edges.count] }
        var n: UInt64 = 0
        for _ in 0..<8 { n = n << 8 | UInt64(byte()) }
        return n
    }
}
