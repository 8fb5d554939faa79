import DragonflyCommon
import Foundation
import Locking
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

extension PieceStore {
    /// Starts storing piece `number` of a task as its bytes arrive; nil when the piece is
    /// here already (nothing to fetch). When another copy of the piece is being written
    /// already (the end game fetches a late piece twice), this one gathers in memory and is
    /// written only once its digest is checked, overtaking the other if it is first.
    public func receivePiece(taskID: String, number: UInt32) async throws(StorageError) -> IncomingPiece? {
        let e = try await entry(taskID)
        let layout = PieceLayout(contentLength: e.meta.contentLength, pieceLength: e.meta.pieceLength)
        guard let slot = layout.piece(number) else { throw .unknownPiece(task: taskID, number: number) }
        guard let log = e.log else {
            if e.meta.pieces[number] != nil { return nil }
            throw .io("task \(taskID) is finished; piece \(number) should be here")
        }
        let claim = PieceClaim()
        enum Outcome { case here, busy, claimed([ContentMirror]), gone }
        let outcome = tasks.withLock { t -> Outcome in
            guard let current = t[taskID], current.generation == e.generation else { return .gone }
            if current.meta.pieces[number] != nil { return .here }
            if current.writers[number] != nil { return .busy }
            t[taskID]?.writers[number] = claim
            return .claimed(current.mirrors)
        }
        switch outcome {
        case .here: return nil
        case .gone: throw .unknownTask(taskID)
        case .busy: return IncomingPiece(store: self, taskID: taskID, slot: slot, entry: e, log: log, claim: nil, mirrors: [])
        case .claimed(let mirrors):
            mirrors.forEach { $0.begin(number) }
            return IncomingPiece(store: self, taskID: taskID, slot: slot, entry: e, log: log, claim: claim, mirrors: mirrors)
        }
    }
}

/// A piece stored while it downloads, so a fetch never holds a whole piece in memory: the
/// bytes gather in one reused batch buffer (or a received array is taken as it is), and
/// each batch is hashed (CRC-32, carried on) and written at its offset on the store's
/// thread pool, under the piece's claim. The piece is recorded, and readable by anyone, only
/// at `commit`, once its length is complete and its digest checked; bytes written for a
/// piece that is never committed are never read (a later fetch of it writes them again).
/// Without the claim (another copy holds it) the bytes gather in memory and go through
/// `writePiece` at `commit`. One task uses it at a time; dropping it gives the claim up.
public final class IncomingPiece {
    /// Bytes gathered before a write: large enough for few system calls, small enough
    /// that eight pieces in flight hold 8 MiB instead of 32.
    public static let batchSize = 1 << 20

    private let store: PieceStore
    public let taskID: String
    private let slot: PieceLayout.Piece
    private let generation: UInt64
    private let log: PieceLog
    private let contentWrites: Locked<Void>
    private let path: String
    /// Nil when another copy held the piece's claim: this one stays in `batch` until checked.
    private let claim: PieceClaim?
    /// Outputs the bytes are written into as well, as they go to the store (with the claim only).
    private let mirrors: [ContentMirror]
    private var batch: [UInt8] = []
    /// Bytes received so far (written, or in `batch`).
    public private(set) var received: UInt64 = 0
    private var flushed: UInt64 = 0
    private var crc: UInt32 = 0
    /// Another, checked copy took the piece over: what arrives now is only counted.
    private var overtaken = false

    init(store: PieceStore, taskID: String, slot: PieceLayout.Piece, entry: PieceStore.Entry, log: PieceLog, claim: PieceClaim?,
         mirrors: [ContentMirror]) {
        self.store = store
        self.taskID = taskID
        self.slot = slot
        self.generation = entry.generation
        self.log = log
        self.contentWrites = entry.contentWrites
        self.path = store.contentPath(taskID)
        self.claim = claim
        self.mirrors = claim == nil ? [] : mirrors
    }

    deinit {
        if let claim { store.releaseClaim(claim, taskID: taskID, number: slot.number) }
    }

    public var number: UInt32 { slot.number }
    public var length: UInt64 { slot.length }
    /// Bytes the piece still needs.
    public var remaining: UInt64 { slot.length - received }
    /// Whether the bytes go to the file as they arrive (false: gathered until checked).
    public var isStreaming: Bool { claim != nil }

    private var batchLimit: Int { claim == nil ? Int(clamping: slot.length) : Self.batchSize }

    /// Takes up to `remaining` bytes of `chunk`, writing a batch out when one fills.
    /// Returns how many bytes it took; a sender offering more than the piece holds is the
    /// caller's to judge (an origin's 200 carries the whole file).
    @discardableResult
    public func append(_ chunk: ByteBuffer) async throws(StorageError) -> Int {
        var rest = chunk
        var took = 0
        while rest.readableBytes > 0, remaining > 0 {
            if batch.count == batchLimit { try await flush() }
            if batch.capacity < batchLimit { batch.reserveCapacity(batchLimit) }
            let n = min(rest.readableBytes, batchLimit - batch.count, Int(clamping: remaining))
            rest.withUnsafeReadableBytes { batch.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0.prefix(n))) }
            rest.moveReaderIndex(forwardBy: n)
            received += UInt64(n)
            took += n
        }
        if claim != nil, batch.count == batchLimit { try await flush() }
        return took
    }

    /// Takes received bytes whole when they can be written as they are (nothing gathered
    /// before them, and they fit the piece): no copy into the batch.
    public func append(_ bytes: some PieceBytes) async throws(StorageError) {
        guard claim != nil, batch.isEmpty, UInt64(bytes.count) <= remaining, !bytes.isEmpty else {
            var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
            bytes.withUnsafeBytes { _ = buffer.writeBytes($0) }
            let took = try await append(buffer)
            guard took == bytes.count else { throw .wrongLength(piece: slot.number, expected: slot.length, got: Int(clamping: received) + bytes.count - took) }
            return
        }
        received += UInt64(bytes.count)
        try await write(bytes)
    }

    /// Writes what is gathered. The batch is handed to the pool and comes back to be reused.
    private func flush() async throws(StorageError) {
        guard claim != nil, !batch.isEmpty else { return }
        let out = batch
        batch = []
        batch = try await write(out)
        batch.removeAll(keepingCapacity: true)
    }

    /// Hashes and writes `bytes` at the next offset, unless the piece was overtaken;
    /// returns the array for reuse.
    @discardableResult
    private func write<Bytes: PieceBytes>(_ bytes: Bytes) async throws(StorageError) -> Bytes {
        guard let claim, !overtaken else { return bytes }
        let (path, offset, taskID, crc, contentWrites, direct) = (path, slot.offset + flushed, taskID, crc, contentWrites, store.direct)
        let (mirrors, number) = (mirrors, slot.number)
        let (next, returned) = try await store.onPool { () throws(StorageError) -> (UInt32?, Bytes) in
            let next = bytes.withUnsafeBytes { Hashing.crc32($0, continuing: crc) }
            // Under the claim, so a copy that takes the piece over finds no write of this
            // one still to come, in the store or in a mirror.
            let wrote: Void? = try claim.ifCurrent { () throws(StorageError) in
                guard !mirrors.isEmpty else {
                    return try PieceStore.writeBytes(bytes, to: path, offset: offset, taskID: taskID, serializedBy: contentWrites, direct: direct)
                }
                // The store's write and the mirrors' at once: on a disk that serves several
                // transfers in parallel, each batch is written in the time of one.
                let storeFailure = Locked<StorageError?>(nil)
                DispatchQueue.concurrentPerform(iterations: 1 + mirrors.count) { i in
                    guard i > 0 else {
                        do throws(StorageError) {
                            try PieceStore.writeBytes(bytes, to: path, offset: offset, taskID: taskID, serializedBy: contentWrites, direct: direct)
                        } catch {
                            storeFailure.withLock { $0 = error }
                        }
                        return
                    }
                    bytes.withUnsafeBytes { mirrors[i - 1].write($0, at: offset, piece: number) }
                }
                if let failure = storeFailure.withLock({ $0 }) { throw failure }
            }
            return (wrote == nil ? nil : next, bytes)
        }
        flushed += UInt64(returned.count)
        if let next { self.crc = next } else { overtaken = true }
        return returned
    }

    /// Records the complete piece, after checking it against `expectedDigest` when given.
    /// A piece another checked copy overtook is reported as that copy landed.
    public func commit(expectedDigest: String? = nil, parentID: String? = nil) async throws(StorageError) -> TaskMetadata.Piece {
        guard received == slot.length else {
            throw .wrongLength(piece: slot.number, expected: slot.length, got: Int(clamping: received))
        }
        guard let claim else {
            let bytes = batch
            batch = []
            return try await store.writePiece(taskID: taskID, number: slot.number, bytes: bytes, expectedDigest: expectedDigest,
                                              parentID: parentID)
        }
        try await flush()
        if overtaken { return try await settled() }
        let digest = PieceDigest.crc32(crc)
        if let expected = expectedDigest, !expected.isEmpty, expected != digest {
            throw .digestMismatch(piece: slot.number, expected: expected, actual: digest)
        }
        let (log, number, length, path, generation, taskID, store, mirrors) = (log, slot.number, slot.length, path, generation, taskID, store, mirrors)
        let piece = TaskMetadata.Piece(number: number, offset: slot.offset, length: slot.length, digest: digest, parentID: parentID)
        let recorded = try await store.onPool { () throws(StorageError) -> TaskMetadata.Piece?? in
            try claim.ifCurrent { () throws(StorageError) -> TaskMetadata.Piece? in
                try log.append(PieceLog.Entry(number: number, digest: digest, parentID: parentID), length: length, contentPath: path)
                // Before the piece is visible, so whoever sees it recorded finds it whole in the mirrors.
                mirrors.forEach { $0.land(number, digest: digest) }
                return try store.record(piece, taskID: taskID, generation: generation)
            }
        }
        switch recorded {
        case .some(.some(let kept)): return kept
        case .some(.none): throw .unknownTask(taskID)
        case .none: return try await settled()
        }
    }

    private func settled() async throws(StorageError) -> TaskMetadata.Piece {
        if let claim { store.releaseClaim(claim, taskID: taskID, number: slot.number) }
        return try await store.settledPiece(taskID: taskID, number: slot.number)
    }
}
