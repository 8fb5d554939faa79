#if canImport(Glibc)
import Glibc
#endif
import Locking

/// The record of an unfinished task's pieces: one line appended per stored piece
/// (`p <number> <digest> <parent or ->`), and `s` after the content and the log were synced.
/// Appending a line costs one small write instead of rewriting the task's metadata, and a
/// sync is taken only every `syncEvery` bytes of content. After a crash, the pieces before
/// the last `s` are known to be on disk; those after it are checked against their digests
/// before they are served again.
final class PieceLog: Sendable {
    struct Entry: Equatable {
        var number: UInt32
        var digest: String
        var parentID: String?
    }

    struct Contents {
        /// Pieces recorded before the last sync mark: their bytes reached the disk.
        var synced: [Entry] = []
        /// Pieces recorded after it, whose bytes may not have.
        var unsynced: [Entry] = []
    }

    let path: String
    private let syncEvery: UInt64
    private struct State {
        var fd: Int32 = -1
        var sinceSync: UInt64 = 0
        var closed = false
    }
    private let state = Locked(State())

    init(path: String, syncEvery: UInt64) {
        self.path = path
        self.syncEvery = syncEvery
    }

    deinit {
        state.withLock { s in
            if s.fd >= 0 { Glibc.close(s.fd) }
        }
    }

    /// Creates an empty log, replacing an old one (a task opened afresh).
    static func create(path: String) throws(StorageError) {
        let fd = Glibc.open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io("cannot create piece log: \(String(cString: strerror(errno)))") }
        Glibc.close(fd)
    }

    /// Records a piece whose bytes are already written to `contentFD`'s file. Lines are
    /// appended under one lock, and a sync mark follows every line before it only once the
    /// content and the log were flushed, so a mark never vouches for unflushed bytes.
    func append(_ entry: Entry, length: UInt64, contentPath: String) throws(StorageError) {
        let parent = entry.parentID.map(Self.loggable) ?? "-"
        let line = Array("p \(entry.number) \(entry.digest) \(parent)\n".utf8)
        try state.withLock { (s: inout State) throws(StorageError) in
            guard !s.closed else { throw .unknownTask("(deleted while a piece was being stored)") }
            if s.fd < 0 {
                // No O_CREAT: a log that is gone belongs to a deleted task, not to this write.
                s.fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
                guard s.fd >= 0 else { throw .unknownTask("(its piece log is gone)") }
            }
            try Self.writeAll(s.fd, line)
            s.sinceSync &+= length
            guard s.sinceSync >= syncEvery else { return }
            s.sinceSync = 0
            let content = Glibc.open(contentPath, O_RDONLY | O_CLOEXEC)
            guard content >= 0 else { return }
            defer { Glibc.close(content) }
            guard fdatasync(content) == 0, fdatasync(s.fd) == 0 else { return }
            try Self.writeAll(s.fd, Array("s\n".utf8))
        }
    }

    /// Stops appending (the task was deleted or finished) and closes the file.
    func close() {
        state.withLock { s in
            s.closed = true
            if s.fd >= 0 { Glibc.close(s.fd) }
            s.fd = -1
        }
    }

    /// Reads a log. A torn last line (a crash mid-append) and lines that do not parse are
    /// skipped: their pieces are simply fetched again.
    static func read(path: String, maxBytes: Int) -> Contents? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count < maxBytes {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes += chunk[0..<n]
        }
        var contents = Contents()
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            let fields = line.split(separator: UInt8(ascii: " "))
            if fields.count == 1, fields[0].elementsEqual("s".utf8) {
                contents.synced += contents.unsynced
                contents.unsynced = []
                continue
            }
            guard fields.count == 4, fields[0].elementsEqual("p".utf8),
                  let number = UInt32(String(decoding: fields[1], as: UTF8.self)) else { continue }
            let digest = String(decoding: fields[2], as: UTF8.self)
            guard digest.hasPrefix("crc32:"), UInt32(digest.dropFirst(6)) != nil else { continue }
            let parent = String(decoding: fields[3], as: UTF8.self)
            contents.unsynced.append(Entry(number: number, digest: digest, parentID: parent == "-" ? nil : parent))
        }
        return contents
    }

    /// A parent id as one log field: ids come from the network, so anything that could break
    /// the line format is replaced (the id is only shown and compared, never parsed).
    static func loggable(_ id: String) -> String {
        let ok = !id.isEmpty && id.utf8.count <= 512 && id != "-" && id.utf8.allSatisfy { $0 > 32 && $0 < 127 }
        return ok ? id : "peer"
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(StorageError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress.map { $0 + done }, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ENOSPC || errno == EDQUOT { throw .noSpace("piece log") }
                throw .io("cannot append to the piece log: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }
}
