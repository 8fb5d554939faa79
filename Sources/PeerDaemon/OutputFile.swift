import RPCCore
import Locking
import PeerStorage
#if canImport(Glibc)
import Glibc
#endif

/// A local client's output being filled while its task downloads: each piece is written
/// into a temporary file at its offset as it arrives (the store's `ContentMirror`), or
/// copied from the store as soon as it lands when it was not, and the file is renamed into
/// place once the task is complete. Copying along the way overlaps the copy
/// with the download instead of adding it at the end. A file never committed (a failed or
/// cancelled download) is removed.
///
/// The whole blocks of a piece are written past the page cache (`UncachedWriter`): the
/// store's copy is the one cached, and the output does not take as much memory again. The
/// unaligned ends of a range, and file systems without `O_DIRECT`, go through the cache by
/// sendfile.
final class OutputFile: Sendable {
    let target: OutputTarget
    private let directory: Int32
    private let fd: Int32
    private let temporary: String
    private let uncached: UncachedWriter?
    /// For the store to write pieces into as they arrive (when the output is the whole task).
    let mirror: ContentMirror?
    private let state = Locked<(committed: Bool, closed: Bool)>((false, false))

    /// Creates the temporary file, sized to the task, beside where the output goes.
    /// `mirrored`: the output is the whole task, for the store to write into as pieces arrive.
    init(_ target: OutputTarget, length: UInt64, mirrored: Bool = false) throws(RPCError) {
        self.target = target
        directory = try target.openWritableDirectory()
        temporary = ".\(target.name).dfget-\(UInt32.random(in: 0...UInt32.max))"
        fd = openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let error = target.failure("cannot create a temporary file")
            close(directory)
            throw error
        }
        guard length <= UInt64(Int64.max), ftruncate(fd, off_t(length)) == 0 else {
            let error = target.failure("cannot size the temporary file")
            close(fd)
            unlinkat(directory, temporary, 0)
            close(directory)
            throw error
        }
        uncached = UncachedWriter(directory: directory, name: temporary)
        mirror = mirrored ? ContentMirror(duplicating: fd) : nil
    }

    deinit {
        let (committed, closed) = state.withLock { $0 }
        guard !closed else { return }
        if !committed { unlinkat(directory, temporary, 0) }
        close(fd)
        close(directory)
    }

    /// Copies `length` bytes at `offset` of the stored content to `destination` here (the
    /// same offset unless the output holds a range). Blocking: call it on the thread pool.
    func copy(from source: String, offset: UInt64, length: UInt64, to destination: UInt64? = nil) throws(RPCError) {
        let destination = destination ?? offset
        guard offset <= UInt64(Int64.max), length <= UInt64(Int64.max) - offset,
              destination <= UInt64(Int64.max) - length else { throw target.failure("piece out of range") }
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw target.failure("cannot open the stored content") }
        defer { close(input) }
        guard let uncached, let blocks = UncachedWriter.blocks(at: destination, count: length) else {
            return try cachedCopy(from: input, offset: offset, length: length, to: destination)
        }
        let head = blocks.start - destination
        try cachedCopy(from: input, offset: offset, length: head, to: destination)
        var tail = blocks.start + blocks.count
        switch uncached.copy(from: input, offset: offset + head, count: blocks.count, to: blocks.start) {
        case .copied: break
        case .unsupported: tail = blocks.start
        case .failed(let why):
            errno = why
            throw target.failure("copy failed")
        }
        let end = destination + length
        try cachedCopy(from: input, offset: offset + (tail - destination), length: end - tail, to: tail)
    }

    /// Copies through the page cache, by the kernel.
    private func cachedCopy(from input: Int32, offset: UInt64, length: UInt64, to destination: UInt64) throws(RPCError) {
        guard length > 0 else { return }
        guard lseek(fd, off_t(destination), SEEK_SET) == off_t(destination) else { throw target.failure("seek failed") }
        var from = off_t(offset)
        var left = Int(length)
        while left > 0 {
            let n = sendfile(fd, input, &from, left)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw target.failure("copy failed") }
            left -= n
        }
    }

    /// Moves the file into place (replacing a regular file there). The caller detached the
    /// mirror first, so nothing writes into the file once it is the user's.
    func commit() throws(RPCError) {
        guard renameat(directory, temporary, directory, target.name) == 0 else {
            throw target.failure("cannot move into place")
        }
        state.withLock { $0.committed = true }
    }
}
