import DragonflyCommon
import Foundation

/// What the store remembers about a task, persisted as JSON beside its content file so a
/// restarted daemon serves what it already has.
public struct TaskMetadata: Codable, Equatable, Sendable {
    public struct Piece: Codable, Equatable, Sendable {
        public var number: UInt32
        public var offset: UInt64
        public var length: UInt64
        /// `crc32:<decimal>`, as Dragonfly's Rust client writes it.
        public var digest: String
        public var parentID: String?
    }

    public var taskID: String
    public var url: String
    public var contentLength: UInt64
    public var pieceLength: UInt64
    public var pieces: [UInt32: Piece] = [:]
    public var responseHeader: [String: String] = [:]
    public var finished = false
    /// The content's digest by algorithm (`sha256` → hex), once computed for a check.
    public var knownDigests: [String: String]?
    public var createdAt: Date
    public var accessedAt: Date
    /// When the last piece made it complete (absent in metadata from before it was kept).
    public var finishedAt: Date?
    /// Set for a persistent cache task (`dfcache import`): content the cluster keeps until
    /// its TTL, with no origin to fetch it from again.
    public var persistentCache: PersistentCacheInfo?

    public var pieceCount: UInt32 {
        pieceLength == 0 ? 0 : PieceLayout(contentLength: contentLength, pieceLength: pieceLength).pieceCount
    }

    public var isComplete: Bool { pieces.count == Int(pieceCount) }
}

/// What makes a task one the cluster keeps (a persistent cache task, or a persistent task
/// of an origin): how long it keeps it, and whether this node holds a counted replica.
public struct PersistentCacheInfo: Codable, Equatable, Sendable {
    /// A counted replica: the storage GC does not evict it for space, only at its TTL.
    public var persistent: Bool
    /// When the scheduler created the task; the TTL runs from here on every node alike.
    public var createdAt: Date
    public var ttlSeconds: Int64
    public var replicaCount: UInt64
    public var tag: String?
    public var application: String?
    /// A persistent task's origin (upstream: its object storage); nil for a persistent cache
    /// task, which has none.
    public var sourceURL: String?

    public init(persistent: Bool, createdAt: Date, ttlSeconds: Int64, replicaCount: UInt64, tag: String?, application: String?,
                sourceURL: String? = nil) {
        self.sourceURL = sourceURL
        self.persistent = persistent
        self.createdAt = createdAt
        self.ttlSeconds = ttlSeconds
        self.replicaCount = replicaCount
        self.tag = tag
        self.application = application
    }

    public var expiresAt: Date { createdAt.addingTimeInterval(TimeInterval(ttlSeconds)) }
}
