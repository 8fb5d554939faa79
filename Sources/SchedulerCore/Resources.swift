import DragonflyCommon
import GeneratedAPI
import RPCCore

/// Where the scheduler sends a peer's scheduling answers: its open AnnouncePeer stream.
public typealias PeerStream = RPCWriter<Scheduler_V2_AnnouncePeerResponse>

/// A host as its dfdaemon announced it, plus what the scheduler counts about its uploads.
final class HostRecord {
    var info: Common_V2_Host
    var type: HostType
    var announceInterval: Duration?
    var concurrentUploadLimit: Int
    var concurrentUploadCount = 0
    var uploadCount = 0
    var uploadFailedCount = 0
    /// Bits/s promised to children currently downloading from this host.
    var txBandwidth: UInt64 = 0
    var concurrentUploadPieceCount = 0
    var uploadContentLength: UInt64 = 0
    var peers: Set<String> = []
    let createdAt: ContinuousClock.Instant
    var updatedAt: ContinuousClock.Instant

    init(info: Common_V2_Host, type: HostType, uploadLimit: Int, now: ContinuousClock.Instant) {
        self.info = info
        self.type = type
        self.concurrentUploadLimit = uploadLimit
        self.createdAt = now
        self.updatedAt = now
    }

    var id: String { info.id }
    var freeUploadCount: Int { concurrentUploadLimit - concurrentUploadCount }
    var idc: String { info.network?.idc ?? "" }
    var location: String { info.network?.location ?? "" }
    var maxTxBandwidth: UInt64 { info.network?.maxTxBandwidth ?? 0 }
}

final class TaskRecord {
    let id: String
    /// Only what may be shown to any client (see `keptByScheduler`): the scheduler answers
    /// StatTask, candidate parents and the console from it, none of which may leak secrets.
    private(set) var download: Common_V2_Download
    /// -1 while unknown.
    var contentLength: Int64
    var pieceLength: UInt64
    var totalPieceCount: Int32
    var state: TaskState = .pending
    let backToSourceLimit: Int
    var backToSourcePeers: Set<String> = []
    /// Pieces reported as fetched from the origin, which StatTask lists.
    var pieces: [UInt32: Common_V2_Piece] = [:]
    var dag = PeerDAG()
    var peerFailedCount = 0
    let createdAt: ContinuousClock.Instant
    var updatedAt: ContinuousClock.Instant
    let createdWall: Google_Protobuf_Timestamp
    var updatedWall: Google_Protobuf_Timestamp

    init(id: String, download: Common_V2_Download, backToSourceLimit: Int, now: ContinuousClock.Instant) {
        self.id = id
        self.download = download.keptByScheduler
        // An absent length is unknown, not empty: only a reported 0 makes the task EMPTY.
        self.contentLength = download.actualContentLength.map { Int64(clamping: $0) } ?? -1
        self.pieceLength = download.actualPieceLength ?? download.pieceLength ?? 0
        self.totalPieceCount = download.actualPieceCount.map { Int32(clamping: $0) } ?? 0
        self.backToSourceLimit = backToSourceLimit
        self.createdAt = now
        self.updatedAt = now
        self.createdWall = .now()
        self.updatedWall = .now()
    }

    func touch(_ now: ContinuousClock.Instant) {
        updatedAt = now
        updatedWall = .now()
    }

    /// A later registration's URL and headers replace the earlier ones, as Dragonfly does.
    func adopt(_ other: Common_V2_Download) {
        let kept = other.keptByScheduler
        download.url = kept.url
        download.filteredQueryParams = kept.filteredQueryParams
        download.requestHeader = kept.requestHeader
    }

    var canBackToSource: Bool {
        backToSourcePeers.count <= backToSourceLimit && download.type != .persistentCache
    }

    /// Dragonfly's size scope: what a registering peer is told about the content.
    var sizeScope: Common_V2_SizeScope {
        if contentLength < 0 { return .normal }
        if contentLength == 0 { return .empty }
        if contentLength <= 128 { return .tiny }
        if totalPieceCount == 1 { return .small }
        return .normal
    }
}

final class PeerRecord {
    let id: String
    let taskID: String
    let hostID: String
    var priority: Common_V2_Priority
    var range: Common_V2_Range?
    var state: PeerState = .pending
    var finishedPieces: Set<UInt32> = []
    /// Of those, how many came from the origin (for the console's view of the peer).
    var backToSourcePieces = 0
    var pieceCosts = CostWindow(capacity: 2000)
    var cost: Duration = .zero
    var stream: PeerStream?
    var concurrentPieceCount: UInt32
    /// What each edge from a parent added to that parent's host, so releasing the edge takes
    /// back exactly that even after the task's lengths changed (keyed by parent peer id).
    var parentClaims: [String: EdgeClaim] = [:]
    var blockParents: Set<String> = []
    var needBackToSource = false
    let createdAt: ContinuousClock.Instant
    var updatedAt: ContinuousClock.Instant
    var pieceUpdatedAt: ContinuousClock.Instant
    let createdWall: Google_Protobuf_Timestamp
    var updatedWall: Google_Protobuf_Timestamp

    init(id: String, taskID: String, hostID: String, download: Common_V2_Download, now: ContinuousClock.Instant) {
        self.id = id
        self.taskID = taskID
        self.hostID = hostID
        self.priority = download.priority
        self.range = download.range
        self.concurrentPieceCount = download.concurrentPieceCount ?? 8
        self.createdAt = now
        self.updatedAt = now
        self.pieceUpdatedAt = now
        self.createdWall = .now()
        self.updatedWall = .now()
    }

    func touch(_ now: ContinuousClock.Instant) {
        updatedAt = now
        updatedWall = .now()
    }
}

/// One parent→child edge's share of the parent host's upload bookkeeping.
struct EdgeClaim {
    var bandwidth: UInt64
    var pieceCount: Int
    var contentLength: UInt64
}

extension Common_V2_Download {
    /// The download as the scheduler may keep it: the URL with signing parameters masked
    /// (`LogRedaction.maskingCredentials`), no credential headers (`isCredentialName`), no
    /// object-storage, HDFS or model-hub credentials. The seed peer that must fetch the
    /// origin is handed the registering peer's own download at once and nothing is kept of
    /// it, so these never sit in the scheduler's memory or answers.
    var keptByScheduler: Common_V2_Download {
        var d = self
        d.url = LogRedaction.maskingCredentials(inURL: url)
        d.requestHeader = requestHeader.filter { !LogRedaction.isCredentialName($0.key) }
        d.objectStorage = nil
        d.hdfs = nil
        d.huggingFace = nil
        d.modelScope = nil
        d.openCsg = nil
        d.certificateChain = []
        d.outputPath = nil
        return d
    }
}

/// The most recent piece costs of a peer, which the bad-parent rule reads.
struct CostWindow {
    let capacity: Int
    private(set) var values: [Double] = []

    init(capacity: Int) { self.capacity = capacity }

    mutating func append(_ nanoseconds: Double) {
        values.append(nanoseconds)
        if values.count > capacity { values.removeFirst(values.count - capacity) }
    }
}
