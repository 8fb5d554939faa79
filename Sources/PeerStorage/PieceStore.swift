import DragonflyCommon
import Foundation
import NIOCore
import NIOPosix
import Locking
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Task content on disk, piece by piece: `content/<task>` holds the bytes at their offsets,
/// `metadata/<task>.json` the task (and, once it is finished, all its pieces), and
/// `metadata/<task>.log` the pieces of an unfinished task as they arrive. A piece is
/// recorded only after its bytes are written and match its digest.
///
/// Reads and writes run on a thread pool, never on the caller's executor, and never behind
/// one another: the only shared state is the task index, a small structure under a lock
/// that each write merges its piece into. Waiters learn of new pieces from `changes`.
public final class PieceStore: Sendable {
    public let directory: URL
    /// Signalled with the task id whenever one of its pieces lands, it finishes or is deleted.
    public let changes = ChangeSignal()
    private let pool: NIOThreadPool
    private let syncEvery: UInt64
    /// Content past the page cache where the file system allows it; nil: always cached.
    let direct: DirectIO?

    struct Entry {
        var meta: TaskMetadata
        /// Appends the pieces of an unfinished task; nil once it is finished.
        var log: PieceLog?
        /// Changes when the task is opened afresh or deleted, so a write that started
        /// against an older incarnation is not merged into the new one.
        var generation: UInt64
        /// Pieces being written and not yet recorded, each by its one writer.
        var writers: [UInt32: PieceClaim] = [:]
        /// Held while content is written. The kernel writes one file at a time anyway (the
        /// inode lock), but its waiters spin on that lock for as long as a 1 MiB copy into the
        /// page cache takes (6 % of a child's CPU in a profile); this lock's waiters sleep.
        let contentWrites = Locked<Void>(())
        /// Files each piece of this incarnation is also written into as it arrives.
        var mirrors: [ContentMirror] = []
    }
    let tasks = Locked<[String: Entry]>([:])
    private let nextGeneration = Atomic<UInt64>(0)

    /// `syncEvery`: bytes of content stored between syncs of a task's content and piece log.
    /// `directIO`: content written, and read for uploads, past the page cache (`DirectIO`).
    public init(directory: String, threadPool: NIOThreadPool = .singleton, syncEvery: UInt64 = 64 << 20,
                directIO: Bool = true) throws {
        direct = directIO ? DirectIO() : nil
        self.directory = URL(fileURLWithPath: directory)
        self.pool = threadPool
        self.syncEvery = max(1, syncEvery)
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

    func contentPath(_ task: String) -> String { directory.appendingPathComponent("content/\(task)").path }
    private func headerPath(_ task: String) -> String { directory.appendingPathComponent("metadata/\(task).json").path }
    private func logPath(_ task: String) -> String { directory.appendingPathComponent("metadata/\(task).log").path }

    /// Task ids become file names, so only the hex ids Dragonfly makes are accepted.
    static func validate(_ task: String) throws(StorageError) {
        guard !task.isEmpty, task.count <= 128, task.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || $0 == 45 }) else {
            throw .unknownTask(task)
        }
    }

    /// Runs blocking file work on the pool. Everything the body touches is owned by it: no
    /// pointer or buffer is shared with the caller across the wait.
    func onPool<T: Sendable>(_ body: @escaping @Sendable () throws(StorageError) -> T) async throws(StorageError) -> T {
        do {
            return try await pool.runIfActive { try body() }
        } catch let error as StorageError {
            throw error
        } catch {
            throw .io("\(error)")
        }
    }

    // MARK: - Tasks

    /// Finds or creates the task; an existing one keeps its pieces if the layout agrees.
    @discardableResult
    /// Opens (or creates) a task's content. `responseHeader` is what identifies the origin's
    /// version (validators, content type), kept with a new task so a resumed download can
    /// tell whether the origin changed meanwhile.
    public func open(taskID: String, url: String, contentLength: UInt64, pieceLength: UInt64,
                     responseHeader: [String: String] = [:],
                     persistentCache: PersistentCacheInfo? = nil) async throws(StorageError) -> TaskMetadata {
        try Self.validate(taskID)
        // Lengths come from origins and clients (the daemon checked them too): a piece count
        // the metadata can hold, and offsets that fit in off_t.
        guard pieceLength > 0, contentLength <= UInt64(Int64.max),
              PieceLayout(contentLength: contentLength, pieceLength: pieceLength).exactPieceCount <= PieceLayout.maxPieceCount else {
            throw .io("refusing a task of \(contentLength) bytes in pieces of \(pieceLength)")
        }
        if let m = try? await metadata(taskID), m.contentLength == contentLength, m.pieceLength == pieceLength {
            return m
        }
        let now = Date()
        var draft = TaskMetadata(taskID: taskID, url: url, contentLength: contentLength, pieceLength: pieceLength,
                                 createdAt: now, accessedAt: now)
        draft.responseHeader = responseHeader
        draft.persistentCache = persistentCache
        let fresh = draft
        let content = contentPath(taskID), header = headerPath(taskID), log = logPath(taskID)
        let old = tasks.withLock { $0.removeValue(forKey: taskID) }
        old?.log?.close()
        let stale = old.map { Array($0.writers.values) } ?? []
        try await onPool { () throws(StorageError) in
            // Writers of the old incarnation open the file by name: stop them before the
            // new one's pieces land where theirs would.
            stale.forEach { $0.takeOver() }
            let fd = Glibc.open(content, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw .io("cannot create content file: \(String(cString: strerror(errno)))") }
            defer { Glibc.close(fd) }
            // Sparse: space is taken as pieces arrive; running out shows up as ENOSPC on write.
            guard ftruncate(fd, off_t(contentLength)) == 0 else { throw .io("cannot size content file: \(String(cString: strerror(errno)))") }
            try PieceLog.create(path: log)
            try Self.writeHeader(fresh, to: header)
        }
        let generation = nextGeneration.wrappingAdd(1, ordering: .relaxed).newValue
        let entry = Entry(meta: fresh, log: PieceLog(path: log, syncEvery: syncEvery), generation: generation)
        let kept = tasks.withLock { t -> Entry in
            // Another open may have won the race; its incarnation stands.
            if let existing = t[taskID] { return existing }
            t[taskID] = entry
            return entry
        }
        changes.signal(taskID)
        return kept.meta
    }

    /// A snapshot of what the store knows of the task.
    public func metadata(_ taskID: String) async throws(StorageError) -> TaskMetadata {
        try await entry(taskID).meta
    }

    func entry(_ taskID: String) async throws(StorageError) -> Entry {
        try Self.validate(taskID)
        if let e = tasks.withLock({ $0[taskID] }) { return e }
        let loaded = try await load(taskID)
        return tasks.withLock { t in
            if let existing = t[taskID] { return existing }
            t[taskID] = loaded
            return loaded
        }
    }

    /// Reads a task from disk: a finished task's header lists its pieces; an unfinished one's
    /// pieces are those in the header (older stores wrote them there) and its log. Logged
    /// pieces after the last sync are read back and kept only if they match their digest.
    private func load(_ taskID: String) async throws(StorageError) -> Entry {
        let header = headerPath(taskID), log = logPath(taskID), content = contentPath(taskID)
        let meta = try await onPool { () throws(StorageError) -> TaskMetadata in
            guard let data = FileManager.default.contents(atPath: header) else { throw .unknownTask(taskID) }
            var m: TaskMetadata
            do { m = try JSONDecoder().decode(TaskMetadata.self, from: data) } catch {
                throw .corruptMetadata("\(taskID): \(error)")
            }
            guard m.taskID == taskID, m.pieceLength > 0,
                  PieceLayout(contentLength: m.contentLength, pieceLength: m.pieceLength).exactPieceCount <= PieceLayout.maxPieceCount else {
                throw .corruptMetadata("\(taskID): impossible layout")
            }
            if m.finished { return m }
            // Stores from before the piece log kept every piece in the header; appends need the file.
            let created = Glibc.open(log, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0o600)
            if created >= 0 { Glibc.close(created) }
            let layout = PieceLayout(contentLength: m.contentLength, pieceLength: m.pieceLength)
            let logged = PieceLog.read(path: log, maxBytes: 64 << 20) ?? PieceLog.Contents()
            func record(_ e: PieceLog.Entry) {
                guard let slot = layout.piece(e.number) else { return }
                m.pieces[e.number] = TaskMetadata.Piece(number: e.number, offset: slot.offset, length: slot.length,
                                                        digest: e.digest, parentID: e.parentID)
            }
            logged.synced.forEach(record)
            for e in logged.unsynced where m.pieces[e.number] == nil {
                guard let slot = layout.piece(e.number),
                      let bytes = try? Self.readBytes(content, offset: slot.offset, length: slot.length),
                      PieceDigest.of(bytes) == e.digest else { continue }
                record(e)
            }
            return m
        }
        let generation = nextGeneration.wrappingAdd(1, ordering: .relaxed).newValue
        return Entry(meta: meta, log: meta.finished ? nil : PieceLog(path: log, syncEvery: syncEvery), generation: generation)
    }

    private static func writeHeader(_ m: TaskMetadata, to path: String) throws(StorageError) {
        do {
            let data = try JSONEncoder().encode(m)
            // Write-then-rename: a crash leaves the old header or the new, never half.
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
            chmod(path, 0o600)
        } catch {
            let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
            if (error as NSError).code == NSFileWriteOutOfSpaceError || underlying?.code == Int(ENOSPC) {
                throw .noSpace("metadata of \(m.taskID)")
            }
            throw .io("cannot write metadata of \(m.taskID): \(error)")
        }
    }

    // MARK: - Pieces

    /// Stores a piece after checking its length and, when given, the digest the sender
    /// reported. Returns the recorded piece. A piece that is already here is not written
    /// again (a reader may be sending it): the copy that arrived second is only checked.
    /// A copy being written as it arrives (`receivePiece`) is overtaken: this one, already
    /// checked, is the one kept.
    @discardableResult
    public func writePiece(taskID: String, number: UInt32, bytes: some PieceBytes, expectedDigest: String? = nil,
                           parentID: String? = nil) async throws(StorageError) -> TaskMetadata.Piece {
        let e = try await entry(taskID)
        let layout = PieceLayout(contentLength: e.meta.contentLength, pieceLength: e.meta.pieceLength)
        guard let slot = layout.piece(number) else { throw .unknownPiece(task: taskID, number: number) }
        guard UInt64(bytes.count) == slot.length else {
            throw .wrongLength(piece: number, expected: slot.length, got: bytes.count)
        }
        let expected = expectedDigest.flatMap { $0.isEmpty ? nil : $0 }
        if let existing = e.meta.pieces[number] {
            if let expected, expected != existing.digest {
                throw .digestMismatch(piece: number, expected: expected, actual: existing.digest)
            }
            return existing
        }
        guard let log = e.log else { throw .io("task \(taskID) is finished; piece \(number) should be here") }
        let path = contentPath(taskID)
        let digest = try await onPool { () throws(StorageError) -> String in
            let digest = PieceDigest.crc32(bytes.withUnsafeBytes { Hashing.crc32($0) })
            if let expected, expected != digest {
                throw .digestMismatch(piece: number, expected: expected, actual: digest)
            }
            return digest
        }
        let mine = PieceClaim()
        guard let previous = tasks.withLock({ t -> PieceClaim?? in
            guard t[taskID]?.generation == e.generation else { return .none }
            defer { t[taskID]?.writers[number] = mine }
            return .some(t[taskID]?.writers[number])
        }) else { throw .unknownTask(taskID) }
        defer { releaseClaim(mine, taskID: taskID, number: number) }
        let piece = TaskMetadata.Piece(number: number, offset: slot.offset, length: slot.length, digest: digest, parentID: parentID)
        let recorded = try await onPool { () throws(StorageError) -> TaskMetadata.Piece?? in
            previous?.takeOver()
            return try mine.ifCurrent { () throws(StorageError) -> TaskMetadata.Piece? in
                if let here = self.recordedPiece(taskID, number, generation: e.generation) { return here }
                try Self.writeBytes(bytes, to: path, offset: slot.offset, taskID: taskID, serializedBy: e.contentWrites,
                                    direct: self.direct)
                try log.append(PieceLog.Entry(number: number, digest: digest, parentID: parentID), length: slot.length, contentPath: path)
                return try self.record(piece, taskID: taskID, generation: e.generation)
            }
        }
        switch recorded {
        case .some(.some(let kept)): return kept
        case .some(.none): throw .unknownTask(taskID)
        // A later checked copy overtook this one; it is the one kept.
        case .none: return try await settledPiece(taskID: taskID, number: number)
        }
    }

    /// The piece if it is recorded in this incarnation of the task.
    func recordedPiece(_ taskID: String, _ number: UInt32, generation: UInt64) -> TaskMetadata.Piece? {
        tasks.withLock { t in t[taskID].flatMap { $0.generation == generation ? $0.meta.pieces[number] : nil } }
    }

    /// Records a piece whose bytes are written and logged; a copy recorded meanwhile stays.
    /// Nil when the task was deleted or opened afresh since.
    func record(_ piece: TaskMetadata.Piece, taskID: String, generation: UInt64) throws(StorageError) -> TaskMetadata.Piece? {
        let kept = tasks.withLock { t -> TaskMetadata.Piece? in
            guard t[taskID]?.generation == generation else { return nil }
            if t[taskID]?.meta.pieces[piece.number] == nil { t[taskID]?.meta.pieces[piece.number] = piece }
            t[taskID]?.meta.accessedAt = Date()
            return t[taskID]?.meta.pieces[piece.number]
        }
        if kept != nil { changes.signal(taskID) }
        return kept
    }

    /// From now on, pieces of the task as it is open now are also written into `mirror`
    /// as they arrive (`ContentMirror`); false when the task is not open.
    @discardableResult
    public func attach(_ mirror: ContentMirror, to taskID: String) -> Bool {
        tasks.withLock { t in
            guard t[taskID] != nil else { return false }
            t[taskID]?.mirrors.append(mirror)
            return true
        }
    }

    /// Stops writing into `mirror`; no write reaches it after this returns.
    public func detach(_ mirror: ContentMirror, from taskID: String) {
        tasks.withLock { t in t[taskID]?.mirrors.removeAll { $0 === mirror } }
        mirror.retire()
    }

    /// Gives up a piece's claim, if it is still the one held, and wakes those waiting to
    /// see how the piece settled.
    func releaseClaim(_ claim: PieceClaim, taskID: String, number: UInt32) {
        tasks.withLock { t in
            if t[taskID]?.writers[number] === claim { t[taskID]?.writers[number] = nil }
        }
        changes.signal(taskID)
    }

    /// Waits until no one is writing the piece, then returns it if it was recorded: what a
    /// writer that was overtaken by another copy reports.
    func settledPiece(taskID: String, number: UInt32, timeout: Duration = .seconds(120)) async throws(StorageError) -> TaskMetadata.Piece {
        let deadline = ContinuousClock.now + timeout
        while true {
            let seen = changes.version(taskID)
            let (piece, writing) = tasks.withLock { t in (t[taskID]?.meta.pieces[number], t[taskID]?.writers[number] != nil) }
            if let piece { return piece }
            guard writing else { throw .io("piece \(number) of \(taskID): the copy that overtook this one was not kept") }
            let now = ContinuousClock.now
            guard now < deadline else { throw .io("piece \(number) of \(taskID): still being written by another copy") }
            await changes.wait(taskID, after: seen, timeout: min(deadline - now, .seconds(5)))
        }
    }

    /// Reads a stored piece. `verifying` re-checks its digest, for whole-task checks; a
    /// piece read to be sent on is not hashed again, since the child checks what it gets
    /// against the digest that travels with it (hash once per hop).
    public func readPiece(taskID: String, number: UInt32, verifying: Bool = true) async throws(StorageError) -> [UInt8] {
        let e = try await entry(taskID)
        guard let piece = e.meta.pieces[number] else { throw .unknownPiece(task: taskID, number: number) }
        let path = contentPath(taskID)
        let bytes = try await onPool { () throws(StorageError) -> [UInt8] in
            let bytes = try Self.readBytes(path, offset: piece.offset, length: piece.length, direct: self.direct)
            if verifying {
                let digest = PieceDigest.crc32(bytes.withUnsafeBytes { Hashing.crc32($0) })
                guard digest == piece.digest else {
                    throw .digestMismatch(piece: number, expected: piece.digest, actual: digest)
                }
            }
            return bytes
        }
        // Recency for LRU eviction; kept in memory and saved with the task when it finishes.
        tasks.withLock { $0[taskID]?.meta.accessedAt = Date() }
        return bytes
    }

    /// A handle of its own on the file that holds a stored piece, for sending the piece
    /// from the page cache without reading it in (Vortex's sendfile). The caller closes it.
    /// The piece's bytes stay readable through it even if the task is deleted meanwhile;
    /// a task deleted and opened afresh before the file was opened is refused, since the
    /// new file need not hold this piece.
    public func openPiece(taskID: String, number: UInt32) async throws(StorageError) -> (NIOFileHandle, TaskMetadata.Piece) {
        let e = try await entry(taskID)
        guard let piece = e.meta.pieces[number] else { throw .unknownPiece(task: taskID, number: number) }
        let path = contentPath(taskID)
        let handle = try await onPool { () throws(StorageError) -> NIOFileHandle in
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw .io("cannot open content of \(taskID): \(String(cString: strerror(errno)))") }
            return NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
        }
        let current = tasks.withLock { t -> Bool in
            guard t[taskID]?.generation == e.generation else { return false }
            t[taskID]?.meta.accessedAt = Date()
            return true
        }
        guard current else {
            try? handle.close()
            throw .unknownTask(taskID)
        }
        return (handle, piece)
    }

    /// Reads `length` bytes at `offset` through a handle from `openPiece` into a new buffer
    /// right after `head`, on the pool: a message around a piece's content, built with the
    /// content's one copy (read direct when it can be, else from the page cache).
    public func read(_ file: NIOFileHandle, offset: UInt64, length: UInt64, after head: [UInt8]) async throws(StorageError) -> ByteBuffer {
        guard length <= UInt64(Int.max / 2), offset <= UInt64(Int64.max) - length else { throw .io("\(length) bytes at \(offset)") }
        let direct = self.direct
        return try await onPool { () throws(StorageError) -> ByteBuffer in
            var buffer = ByteBufferAllocator().buffer(capacity: head.count + Int(length))
            buffer.writeBytes(head)
            if let direct, try Self.readDirect(file, offset: offset, length: length, into: &buffer, direct) { return buffer }
            do {
                try file.withUnsafeFileDescriptor { fd in
                    _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(length)) { out in
                        try Self.readFully(fd: fd, into: UnsafeMutableRawBufferPointer(rebasing: out[0..<Int(length)]), offset: offset)
                        return Int(length)
                    }
                }
            } catch let error as StorageError {
                throw error
            } catch {
                throw .io("the piece's file is closed: \(error)")
            }
            return buffer
        }
    }

    /// Whether `read` takes content at `offset` past the page cache.
    public func readsDirect(offset: UInt64) -> Bool {
        direct?.isUsable == true && offset % DirectIO.blockSize == 0
    }

    /// Appends the bytes read direct to `buffer`; false (and `buffer` untouched) when they
    /// cannot be read direct.
    private static func readDirect(_ file: NIOFileHandle, offset: UInt64, length: UInt64, into buffer: inout ByteBuffer,
                                   _ direct: DirectIO) throws(StorageError) -> Bool {
        let fd: CInt
        do { fd = try file.withUnsafeFileDescriptor { $0 } } catch { throw .io("the piece's file is closed: \(error)") }
        // The handle is the caller's and stays open across this call, so its number does too.
        return try direct.read(fd: fd, offset: offset, length: length) { buffer.writeBytes($0) }
    }

    /// Writes on the store's thread pool, where blocking is expected, so the lock is held
    /// across the system calls. Whole blocks go direct when `direct` allows; the rest
    /// through the cache.
    static func writeBytes(_ bytes: some PieceBytes, to path: String, offset: UInt64, taskID: String,
                           serializedBy contentWrites: Locked<Void>, direct: DirectIO?) throws(StorageError) {
        let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("cannot open content of \(taskID): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        let written = contentWrites.withLock { _ in
            bytes.withUnsafeBytes { all in
                Result { () throws(StorageError) in
                    guard let blocks = try direct?.write(all, at: offset, path: path) else {
                        return try writeAll(all, to: fd, offset: offset, taskID: taskID)
                    }
                    let head = Int(blocks.start - offset), tail = head + Int(blocks.count)
                    try writeAll(UnsafeRawBufferPointer(rebasing: all[..<head]), to: fd, offset: offset, taskID: taskID)
                    try writeAll(UnsafeRawBufferPointer(rebasing: all[tail...]), to: fd, offset: offset + UInt64(tail), taskID: taskID)
                }
            }
        }
        try written.get()
    }

    static func writeAll(_ bytes: UnsafeRawBufferPointer, to fd: CInt, offset: UInt64, taskID: String) throws(StorageError) {
        var written = 0
        while written < bytes.count {
            let n = pwrite(fd, bytes.baseAddress.map { $0 + written }, bytes.count - written, off_t(offset) + off_t(written))
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ENOSPC || errno == EDQUOT { throw .noSpace("writing \(bytes.count) bytes of \(taskID)") }
                throw .io("write failed: \(String(cString: strerror(errno)))")
            }
            written += n
        }
    }

    /// Reads `length` bytes into a buffer that is not zero-filled first (every byte is
    /// overwritten by the read, or the read fails); direct when `direct` allows.
    static func readBytes(_ path: String, offset: UInt64, length: UInt64, direct: DirectIO? = nil) throws(StorageError) -> [UInt8] {
        guard length <= UInt64(Int.max / 2) else { throw .io("piece of \(length) bytes") }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("cannot open content: \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        return try readBytes(fd: fd, offset: offset, length: length, direct: direct)
    }

    static func readBytes(fd: CInt, offset: UInt64, length: UInt64, direct: DirectIO? = nil) throws(StorageError) -> [UInt8] {
        guard length <= UInt64(Int.max / 2), offset <= UInt64(Int64.max) - length else { throw .io("\(length) bytes at \(offset)") }
        var failure: StorageError?
        let bytes = [UInt8](unsafeUninitializedCapacity: Int(length)) { buf, count in
            let read = Result { () throws(StorageError) in
                let target = UnsafeMutableRawBufferPointer(buf)
                var filled = 0
                let wasDirect = try direct?.read(fd: fd, offset: offset, length: length) { chunk in
                    UnsafeMutableRawBufferPointer(rebasing: target[filled..<(filled + chunk.count)]).copyMemory(from: chunk)
                    filled += chunk.count
                }
                if wasDirect != true { try readFully(fd: fd, into: target, offset: offset) }
            }
            if case .failure(let error) = read { failure = error }
            count = failure == nil ? buf.count : 0
        }
        if let failure { throw failure }
        return bytes
    }

    /// Fills `buffer` from `offset` of `fd`; a file that ends first is an error.
    static func readFully(fd: CInt, into buffer: UnsafeMutableRawBufferPointer, offset: UInt64) throws(StorageError) {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress.map { $0 + done }, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .io("short read at \(offset + UInt64(done))") }
            done += n
        }
    }

    /// Marks the task complete once every piece is there and, when a whole-content digest
    /// is known, the content matches it. Its content is synced and its header written with
    /// every piece, once; the piece log is no longer needed.
    public func finish(taskID: String, contentDigest: ContentDigest? = nil) async throws(StorageError) {
        let e = try await entry(taskID)
        guard e.meta.isComplete else { throw .io("task \(taskID) has \(e.meta.pieces.count) of \(e.meta.pieceCount) pieces") }
        if e.meta.finished && contentDigest == nil { return }
        var known = e.meta.knownDigests ?? [:]
        if let contentDigest {
            let actual = try await digestOfContent(e.meta, contentDigest.algorithm)
            guard actual == contentDigest else {
                throw .digestMismatch(piece: nil, expected: contentDigest.description, actual: actual.description)
            }
            known[contentDigest.algorithm.rawValue] = actual.encoded
        }
        var finishing = e.meta
        if !finishing.finished { finishing.finishedAt = Date() }
        finishing.finished = true
        finishing.knownDigests = known.isEmpty ? nil : known
        let final = finishing
        let content = contentPath(taskID), header = headerPath(taskID), log = logPath(taskID)
        try await onPool { () throws(StorageError) in
            let fd = Glibc.open(content, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw .io("cannot open content of \(taskID): \(String(cString: strerror(errno)))") }
            defer { Glibc.close(fd) }
            // The header vouches for every piece from now on: their bytes must be on disk first.
            guard fsync(fd) == 0 else { throw .io("fsync failed: \(String(cString: strerror(errno)))") }
            try Self.writeHeader(final, to: header)
        }
        let finishedLog = tasks.withLock { t -> PieceLog? in
            guard t[taskID]?.generation == e.generation else { return nil }
            t[taskID]?.meta.finished = true
            t[taskID]?.meta.finishedAt = final.finishedAt
            t[taskID]?.meta.knownDigests = final.knownDigests
            defer { t[taskID]?.log = nil }
            return t[taskID]?.log
        }
        if let finishedLog {
            finishedLog.close()
            unlink(log)
        }
        changes.signal(taskID)
    }

    /// Checks a finished task's content against `contentDigest` without changing the task.
    /// The content's digest per algorithm is remembered, so later checks cost nothing.
    public func verify(taskID: String, contentDigest: ContentDigest) async throws(StorageError) {
        let m = try await metadata(taskID)
        let algorithm = contentDigest.algorithm.rawValue
        let actual: String
        if let known = m.knownDigests?[algorithm] {
            actual = known
        } else {
            guard m.isComplete else { throw .io("task \(taskID) has \(m.pieces.count) of \(m.pieceCount) pieces") }
            actual = try await digestOfContent(m, contentDigest.algorithm).encoded
            tasks.withLock { t in
                guard var known = t[taskID]?.meta.knownDigests ?? (t[taskID] == nil ? nil : [:]) else { return }
                known[algorithm] = actual
                t[taskID]?.meta.knownDigests = known
            }
        }
        guard actual == contentDigest.encoded else {
            throw .digestMismatch(piece: nil, expected: contentDigest.description, actual: "\(algorithm):\(actual)")
        }
    }

    /// The whole content's digest, read piece by piece (each checked against its own digest
    /// on the way) on the pool.
    private func digestOfContent(_ m: TaskMetadata, _ algorithm: ContentDigest.Algorithm) async throws(StorageError) -> ContentDigest {
        let pieces = m.pieces.values.sorted { $0.number < $1.number }
        let path = contentPath(m.taskID)
        return try await onPool { () throws(StorageError) -> ContentDigest in
            var crc: UInt32 = 0
            let streaming = algorithm == .crc32 ? nil : StreamingDigest(algorithm: algorithm.rawValue)
            if algorithm != .crc32 && streaming == nil { throw .io("no \(algorithm) digest") }
            for p in pieces {
                let bytes = try Self.readBytes(path, offset: p.offset, length: p.length, direct: self.direct)
                let digest = PieceDigest.crc32(bytes.withUnsafeBytes { Hashing.crc32($0) })
                guard digest == p.digest else { throw .digestMismatch(piece: p.number, expected: p.digest, actual: digest) }
                if let streaming { streaming.update(bytes) } else { crc = Hashing.crc32(bytes, continuing: crc) }
            }
            if let streaming { return ContentDigest(algorithm: algorithm, encoded: streaming.finalizeHex()) }
            return ContentDigest(algorithm: .crc32, encoded: String(crc))
        }
    }

    /// Changes a task's persistent-cache facts (a replica made persistent, the TTL the
    /// scheduler holds) in memory and in its header, merged into the current metadata.
    public func updatePersistentCache(taskID: String, _ change: @escaping @Sendable (inout PersistentCacheInfo) -> Void) async throws(StorageError) {
        _ = try await entry(taskID)
        let updated = tasks.withLock { t -> TaskMetadata? in
            guard var info = t[taskID]?.meta.persistentCache else { return nil }
            change(&info)
            t[taskID]?.meta.persistentCache = info
            return t[taskID]?.meta
        }
        guard let updated else { throw .unknownTask(taskID) }
        let header = headerPath(taskID)
        // The header of an unfinished task lists no pieces (the log does), so the snapshot
        // written here loses nothing of them.
        var written = updated
        if !written.finished { written.pieces = [:] }
        let final = written
        try await onPool { () throws(StorageError) in try Self.writeHeader(final, to: header) }
    }

    // MARK: - Removal

    public func delete(taskID: String) async throws(StorageError) {
        try Self.validate(taskID)
        let old = tasks.withLock { $0.removeValue(forKey: taskID) }
        old?.log?.close()
        // A piece still arriving must not write into a file a later open makes at this name.
        if let stale = old.map({ Array($0.writers.values) }), !stale.isEmpty {
            try? await onPool { stale.forEach { $0.takeOver() } }
        }
        unlink(contentPath(taskID))
        unlink(headerPath(taskID))
        unlink(logPath(taskID))
        changes.signal(taskID)
    }

    /// Bytes held by stored pieces, over all tasks.
    public func storedBytes() async -> UInt64 {
        var total: UInt64 = 0
        for id in allTaskIDs() {
            guard let m = try? await metadata(id) else { continue }
            total &+= m.pieces.values.reduce(0) { $0 &+ $1.length }
        }
        return total
    }

    /// How full the file system under the store is, in percent, and its size in bytes.
    public func fileSystemUsage() -> (usedPercent: Double, totalBytes: UInt64)? {
        var st = statvfs()
        guard statvfs(directory.path, &st) == 0, st.f_blocks > 0 else { return nil }
        return (100 * (1 - Double(st.f_bavail) / Double(st.f_blocks)), UInt64(st.f_blocks) * UInt64(st.f_frsize))
    }

    /// Frees space, least recently used finished tasks first, until the store holds at
    /// most `maxBytes`. Unfinished tasks are left alone: someone is fetching them.
    @discardableResult
    public func collect(toAtMost maxBytes: UInt64) async -> [String] {
        var total = await storedBytes()
        guard total > maxBytes else { return [] }
        var finished: [TaskMetadata] = []
        for id in allTaskIDs() {
            if let m = try? await metadata(id), m.finished { finished.append(m) }
        }
        var removed: [String] = []
        // A persistent replica is what the cluster counts on; only its TTL removes it.
        for m in finished.sorted(by: { $0.accessedAt < $1.accessedAt }) where total > maxBytes && m.persistentCache?.persistent != true {
            try? await delete(taskID: m.taskID)
            total -= min(total, m.pieces.values.reduce(0) { $0 &+ $1.length })
            removed.append(m.taskID)
        }
        return removed
    }

    /// Every task the store holds, finished or not.
    public func taskIDs() -> [String] { allTaskIDs() }

    private func allTaskIDs() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("metadata").path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
    }

    /// Deletes tasks not used for longer than `ttl`; returns their ids.
    @discardableResult
    public func collect(olderThan ttl: TimeInterval, now: Date = Date()) async -> [String] {
        var removed: [String] = []
        for id in allTaskIDs() {
            guard let m = try? await metadata(id) else { continue }
            // A persistent cache task lives for its own TTL, used or not, and no longer.
            if let cache = m.persistentCache {
                guard now > cache.expiresAt else { continue }
            } else {
                guard now.timeIntervalSince(m.accessedAt) > ttl else { continue }
            }
            try? await delete(taskID: id)
            removed.append(id)
        }
        return removed
    }
}
