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

    public var pieceCount: UInt32 {
        pieceLength == 0 ? 0 : PieceLayout(contentLength: contentLength, pieceLength: pieceLength).pieceCount
    }

    public var isComplete: Bool { pieces.count == Int(pieceCount) }
}
