import DragonflyCommon
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Task content on disk, piece by piece: `content/<task>` holds the bytes at their
/// offsets, `metadata/<task>.json` which pieces are there and their digests. A piece is
/// recorded only after its bytes are written and match its digest, and every read is
/// checked against the recorded digest, so a corrupt byte is never handed out.
public actor PieceStore {
    public nonisolated let directory: URL
    private var cache: [String: TaskMetadata] = [:]

    public init(directory: String) throws {
        self.directory = URL(fileURLWithPath: directory)
        // Cached content is whatever any task fetched, possibly private: only the daemon's
        // user may read it. (A data directory that exists already keeps its mode.)
        let fm = FileManager.default
        try fm.createDirectory(at: self.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for sub in ["content", "metadata"] {
            let dir = self.directory.appendingPathComponent(sub)
            try fm.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dir.path)
        }
    }

    private func contentPath(_ task: String) -> String { directory.appendingPathComponent("content/\(task)").path }
    private func metadataURL(_ task: String) -> URL { directory.appendingPathComponent("metadata/\(task).json") }

    /// Task ids become file names, so only the hex ids Dragonfly makes are accepted.
    static func validate(_ task: String) throws(StorageError) {
        guard !task.isEmpty, task.count <= 128, task.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || $0 == 45 }) else {
            throw .unknownTask(task)
        }
    }

    // MARK: - Tasks

    /// Finds or creates the task; an existing one keeps its pieces if the layout agrees.
    @discardableResult
    public func open(taskID: String, url: String, contentLength: UInt64, pieceLength: UInt64) throws(StorageError) -> TaskMetadata {
        try Self.validate(taskID)
        // Lengths come from origins and clients (the daemon checked them too): a piece count
        // the metadata can hold, and offsets that fit in off_t.
        guard pieceLength > 0, contentLength <= UInt64(Int64.max),
              PieceLayout(contentLength: contentLength, pieceLength: pieceLength).exactPieceCount <= PieceLayout.maxPieceCount else {
            throw .io("refusing a task of \(contentLength) bytes in pieces of \(pieceLength)")
        }
        if let m = try? metadata(taskID), m.contentLength == contentLength, m.pieceLength == pieceLength {
            return m
        }
        let fd = Glibc.open(contentPath(taskID), O_CREAT | O_RDWR, 0o600)
        guard fd >= 0 else { throw .io("cannot create content file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // Sparse: space is taken as pieces arrive; running out shows up as ENOSPC on write.
        guard ftruncate(fd, off_t(contentLength)) == 0 else { throw .io("cannot size content file: \(String(cString: strerror(errno)))") }
        let now = Date()
        let m = TaskMetadata(taskID: taskID, url: url, contentLength: contentLength, pieceLength: pieceLength,
                             createdAt: now, accessedAt: now)
        try persist(m)
        return m
    }

    public func metadata(_ taskID: String) throws(StorageError) -> TaskMetadata {
        try Self.validate(taskID)
        if let m = cache[taskID] { return m }
        guard let data = try? Data(contentsOf: metadataURL(taskID)) else { throw .unknownTask(taskID) }
        do {
            let m = try JSONDecoder().decode(TaskMetadata.self, from: data)
            cache[taskID] = m
            return m
        } catch {
            throw .corruptMetadata("\(taskID): \(error)")
        }
    }

    private func persist(_ m: TaskMetadata) throws(StorageError) {
        do {
            let data = try JSONEncoder().encode(m)
            // Write-then-rename: a crash leaves the old metadata or the new, never half.
            try data.write(to: metadataURL(m.taskID), options: .atomic)
            chmod(metadataURL(m.taskID).path, 0o600)
        } catch {
            let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
            if (error as NSError).code == NSFileWriteOutOfSpaceError || underlying?.code == Int(ENOSPC) {
                throw .noSpace("metadata of \(m.taskID)")
            }
            throw .io("cannot write metadata of \(m.taskID): \(error)")
        }
        cache[m.taskID] = m
    }

    // MARK: - Pieces

    /// Stores a piece after checking its length and, when given, the digest the sender
    /// reported. Returns the recorded piece.
    @discardableResult
    public func writePiece(taskID: String, number: UInt32, bytes: [UInt8], expectedDigest: String? = nil,
                           parentID: String? = nil) throws(StorageError) -> TaskMetadata.Piece {
        var m = try metadata(taskID)
        let layout = PieceLayout(contentLength: m.contentLength, pieceLength: m.pieceLength)
        guard let slot = layout.piece(number) else { throw .unknownPiece(task: taskID, number: number) }
        guard UInt64(bytes.count) == slot.length else {
            throw .wrongLength(piece: number, expected: slot.length, got: bytes.count)
        }
        let digest = PieceDigest.of(bytes)
        if let expectedDigest, !expectedDigest.isEmpty, expectedDigest != digest {
            throw .digestMismatch(piece: number, expected: expectedDigest, actual: digest)
        }
        try pwriteAll(taskID, bytes, at: slot.offset)
        let piece = TaskMetadata.Piece(number: number, offset: slot.offset, length: slot.length, digest: digest, parentID: parentID)
        m.pieces[number] = piece
        m.accessedAt = Date()
        try persist(m)
        return piece
    }

    private func pwriteAll(_ taskID: String, _ bytes: [UInt8], at offset: UInt64) throws(StorageError) {
        let fd = Glibc.open(contentPath(taskID), O_WRONLY)
        guard fd >= 0 else { throw .io("cannot open content of \(taskID): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { buf in
                pwrite(fd, buf.baseAddress.map { $0 + written }, bytes.count - written, off_t(offset) + off_t(written))
            }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ENOSPC || errno == EDQUOT { throw .noSpace("writing \(bytes.count) bytes of \(taskID)") }
                throw .io("write failed: \(String(cString: strerror(errno)))")
            }
            written += n
        }
        // Durable before it is recorded: after a crash, recorded pieces are really on disk.
        guard fsync(fd) == 0 else { throw .io("fsync failed: \(String(cString: strerror(errno)))") }
    }

    /// Reads a stored piece. `verifying` re-checks its digest, for whole-task checks; a
    /// piece read to be sent on is not hashed again, since the child checks what it gets
    /// against the digest that travels with it (hash once per hop).
    public func readPiece(taskID: String, number: UInt32, verifying: Bool = true) throws(StorageError) -> [UInt8] {
        let m = try metadata(taskID)
        guard let piece = m.pieces[number] else { throw .unknownPiece(task: taskID, number: number) }
        let fd = Glibc.open(contentPath(taskID), O_RDONLY)
        guard fd >= 0 else { throw .io("cannot open content of \(taskID): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: Int(piece.length))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buf in
                pread(fd, buf.baseAddress.map { $0 + done }, buf.count - done, off_t(piece.offset) + off_t(done))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .io("short read of piece \(number) of \(taskID)") }
            done += n
        }
        if verifying {
            let digest = PieceDigest.of(bytes)
            guard digest == piece.digest else {
                throw .digestMismatch(piece: number, expected: piece.digest, actual: digest)
            }
        }
        // Recency for LRU eviction; kept in memory and saved with the next metadata write.
        cache[taskID]?.accessedAt = Date()
        return bytes
    }

    /// Marks the task complete once every piece is there and, when a whole-content digest
    /// is known, the content matches it.
    public func finish(taskID: String, contentDigest: ContentDigest? = nil) throws(StorageError) {
        var m = try metadata(taskID)
        guard m.isComplete else { throw .io("task \(taskID) has \(m.pieces.count) of \(m.pieceCount) pieces") }
        if let contentDigest {
            let actual = try digestOfContent(m, contentDigest.algorithm)
            guard actual == contentDigest else {
                throw .digestMismatch(piece: nil, expected: contentDigest.description, actual: actual.description)
            }
        }
        m.finished = true
        try persist(m)
    }

    /// Checks a finished task's content against `contentDigest` without changing the task.
    /// The content's digest per algorithm is remembered, so later checks cost nothing.
    public func verify(taskID: String, contentDigest: ContentDigest) throws(StorageError) {
        var m = try metadata(taskID)
        let algorithm = contentDigest.algorithm.rawValue
        let actual: String
        if let known = m.knownDigests?[algorithm] {
            actual = known
        } else {
            guard m.isComplete else { throw .io("task \(taskID) has \(m.pieces.count) of \(m.pieceCount) pieces") }
            actual = try digestOfContent(m, contentDigest.algorithm).encoded
            m.knownDigests = (m.knownDigests ?? [:]).merging([algorithm: actual]) { _, new in new }
            cache[taskID] = m
        }
        guard actual == contentDigest.encoded else {
            throw .digestMismatch(piece: nil, expected: contentDigest.description, actual: "\(algorithm):\(actual)")
        }
    }

    private func digestOfContent(_ m: TaskMetadata, _ algorithm: ContentDigest.Algorithm) throws(StorageError) -> ContentDigest {
        let numbers = m.pieces.keys.sorted()
        switch algorithm {
        case .crc32:
            var crc: UInt32 = 0
            for n in numbers { crc = Hashing.crc32(try readPiece(taskID: m.taskID, number: n), continuing: crc) }
            return ContentDigest(algorithm: .crc32, encoded: String(crc))
        case .sha256, .sha512:
            guard let d = StreamingDigest(algorithm: algorithm.rawValue) else { throw .io("no \(algorithm) digest") }
            for n in numbers { d.update(try readPiece(taskID: m.taskID, number: n)) }
            return ContentDigest(algorithm: algorithm, encoded: d.finalizeHex())
        }
    }

    // MARK: - Removal

    public func delete(taskID: String) throws(StorageError) {
        try Self.validate(taskID)
        cache.removeValue(forKey: taskID)
        unlink(contentPath(taskID))
        unlink(metadataURL(taskID).path)
    }

    /// Bytes held by stored pieces, over all tasks.
    public func storedBytes() -> UInt64 {
        allTaskIDs().compactMap { try? metadata($0) }.reduce(0) { $0 + $1.pieces.values.reduce(0) { $0 + $1.length } }
    }

    /// How full the file system under the store is, in percent, and its size in bytes.
    public nonisolated func fileSystemUsage() -> (usedPercent: Double, totalBytes: UInt64)? {
        var st = statvfs()
        guard statvfs(directory.path, &st) == 0, st.f_blocks > 0 else { return nil }
        return (100 * (1 - Double(st.f_bavail) / Double(st.f_blocks)), UInt64(st.f_blocks) * UInt64(st.f_frsize))
    }

    /// Frees space, least recently used finished tasks first, until the store holds at
    /// most `maxBytes`. Unfinished tasks are left alone: someone is fetching them.
    @discardableResult
    public func collect(toAtMost maxBytes: UInt64) -> [String] {
        var total = storedBytes()
        guard total > maxBytes else { return [] }
        let finished = allTaskIDs().compactMap { try? metadata($0) }.filter(\.finished).sorted { $0.accessedAt < $1.accessedAt }
        var removed: [String] = []
        for m in finished where total > maxBytes {
            try? delete(taskID: m.taskID)
            total -= min(total, m.pieces.values.reduce(0) { $0 + $1.length })
            removed.append(m.taskID)
        }
        return removed
    }

    private func allTaskIDs() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("metadata").path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
    }

    /// Deletes tasks not used for longer than `ttl`; returns their ids.
    @discardableResult
    public func collect(olderThan ttl: TimeInterval, now: Date = Date()) -> [String] {
        var removed: [String] = []
        for id in allTaskIDs() {
            guard let m = try? metadata(id), now.timeIntervalSince(m.accessedAt) > ttl else { continue }
            try? delete(taskID: id)
            removed.append(id)
        }
        return removed
    }
}
