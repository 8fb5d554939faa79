import DragonflyCommon
import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

extension PieceStore {
    /// Starts storing piece `number` of a task as its bytes arrive; nil when the piece is
    /// here already (nothing to fetch).
    public func receivePiece(taskID: String, number: UInt32) async throws(StorageError) -> IncomingPiece? {
        let e = try await entry(taskID)
        let layout = PieceLayout(contentLength: e.meta.contentLength, pieceLength: e.meta.pieceLength)
        guard let slot = layout.piece(number) else { throw .unknownPiece(task: taskID, number: number) }
        if e.meta.pieces[number] != nil { return nil }
        guard let log = e.log else { throw .io("task \(taskID) is finished; piece \(number) should be here") }
        return IncomingPiece(store: self, taskID: taskID, slot: slot, generation: e.generation, log: log)
    }
}

/// A piece stored while it downloads, so a fetch never holds a whole piece in memory: the
/// bytes gather in one reused batch buffer, and each full batch is hashed (CRC-32, carried
/// on) and written at its offset on the store's thread pool. The piece is recorded, and
/// readable by anyone, only at `commit`, once its length is complete; bytes written for a
/// piece that is never committed are never read (a later fetch of it writes them again).
/// One task uses it at a time.
public final class IncomingPiece {
    /// Bytes gathered before a write: large enough for few system calls, small enough
    /// that eight pieces in flight hold 8 MiB instead of 32.
    public static let batchSize = 1 << 20

    private let store: PieceStore
    public let taskID: String
    private let slot: PieceLayout.Piece
    private let generation: UInt64
    private let log: PieceLog
    private let path: String
    private var batch: [UInt8] = []
    /// Bytes received so far (written, or in `batch`).
    public private(set) var received: UInt64 = 0
    private var flushed: UInt64 = 0
    private var crc: UInt32 = 0

    init(store: PieceStore, taskID: String, slot: PieceLayout.Piece, generation: UInt64, log: PieceLog) {
        self.store = store
        self.taskID = taskID
        self.slot = slot
        self.generation = generation
        self.log = log
        self.path = store.contentPath(taskID)
    }

    public var number: UInt32 { slot.number }
    public var length: UInt64 { slot.length }
    /// Bytes the piece still needs.
    public var remaining: UInt64 { slot.length - received }

    /// Takes up to `remaining` bytes of `chunk`, writing a batch out when one fills.
    /// Returns how many bytes it took; a sender offering more than the piece holds is the
    /// caller's to judge (an origin's 200 carries the whole file).
    @discardableResult
    public func append(_ chunk: ByteBuffer) async throws(StorageError) -> Int {
        var rest = chunk
        var took = 0
        while rest.readableBytes > 0, remaining > 0 {
            if batch.count == Self.batchSize { try await flush() }
            if batch.capacity < Self.batchSize { batch.reserveCapacity(Self.batchSize) }
            let n = min(rest.readableBytes, Self.batchSize - batch.count, Int(clamping: remaining))
            rest.withUnsafeReadableBytes { batch.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0.prefix(n))) }
            rest.moveReaderIndex(forwardBy: n)
            received += UInt64(n)
            took += n
        }
        if batch.count == Self.batchSize { try await flush() }
        return took
    }

    /// Writes what is gathered. The batch is handed to the pool and comes back to be reused.
    private func flush() async throws(StorageError) {
        guard !batch.isEmpty else { return }
        let (path, offset, taskID, crc) = (path, slot.offset + flushed, taskID, crc)
        let out = batch
        batch = []
        let (next, returned) = try await store.onPool { () throws(StorageError) -> (UInt32, [UInt8]) in
            let next = out.withUnsafeBytes { Hashing.crc32($0, continuing: crc) }
            try PieceStore.writeBytes(out, to: path, offset: offset, taskID: taskID)
            return (next, out)
        }
        flushed += UInt64(returned.count)
        self.crc = next
        batch = returned
        batch.removeAll(keepingCapacity: true)
    }

    /// Records the complete piece, after checking it against `expectedDigest` when given.
    public func commit(expectedDigest: String? = nil, parentID: String? = nil) async throws(StorageError) -> TaskMetadata.Piece {
        guard received == slot.length else {
            throw .wrongLength(piece: slot.number, expected: slot.length, got: Int(clamping: received))
        }
        try await flush()
        let digest = PieceDigest.crc32(crc)
        if let expected = expectedDigest, !expected.isEmpty, expected != digest {
            throw .digestMismatch(piece: slot.number, expected: expected, actual: digest)
        }
        let (log, number, length, path) = (log, slot.number, slot.length, path)
        try await store.onPool { () throws(StorageError) in
            try log.append(PieceLog.Entry(number: number, digest: digest, parentID: parentID), length: length, contentPath: path)
        }
        let piece = TaskMetadata.Piece(number: number, offset: slot.offset, length: slot.length, digest: digest, parentID: parentID)
        let generation = generation, taskID = taskID
        let merged = store.tasks.withLock { t -> Bool in
            guard t[taskID]?.generation == generation else { return false }
            // A copy that landed meanwhile (another fetch of the same piece) stays.
            if t[taskID]?.meta.pieces[number] == nil { t[taskID]?.meta.pieces[number] = piece }
            t[taskID]?.meta.accessedAt = Date()
            return true
        }
        guard merged else { throw .unknownTask(taskID) }
        store.changes.signal(taskID)
        return piece
    }
}
