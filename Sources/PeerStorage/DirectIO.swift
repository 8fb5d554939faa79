#if canImport(Glibc)
import Glibc
#endif
import Locking

/// Piece content moved between the store's files and memory past the page cache
/// (`O_DIRECT`), through aligned staging buffers that are reused.
///
/// Why: a dfdaemon's content is written once and read a few times soon after (uploads,
/// the user's output), then sits. Through the cache each new GiB takes a GiB of fresh
/// page-cache pages, and on a VM whose balloon reports free pages each fresh page costs a
/// host fault: 3-4 CPU-s per GiB on our machines, against about 0.1 written or read direct
/// (BENCHMARKS.md, session 16). Reused staging memory costs nothing new.
///
/// `O_DIRECT` moves whole blocks at block-aligned offsets, so only the whole blocks of a
/// range go direct; an unaligned head or tail goes through the cache as before, and so
/// does everything once the file system refuses `O_DIRECT` (tmpfs, say). Direct and cached
/// I/O on one file stay coherent: the kernel writes back and drops cached pages of a range
/// before a direct transfer of it.
public final class DirectIO: Sendable {
    public static let blockSize: UInt64 = 4096
    static let stagingBytes = 1 << 20
    /// Staging buffers kept for reuse: one per thread of the store's pool is plenty.
    static let keptBuffers = 8

    /// Glibc's module hides `O_DIRECT` (it needs `_GNU_SOURCE`); the kernel's values.
    #if arch(x86_64)
    public static let flag: Int32 = 0o40000
    #elseif arch(arm64)
    public static let flag: Int32 = 0o200000
    #endif

    /// Aligned memory owned by one user at a time.
    final class Staging: @unchecked Sendable {
        let memory: UnsafeMutableRawPointer
        init?() {
            var memory: UnsafeMutableRawPointer?
            guard posix_memalign(&memory, Int(DirectIO.blockSize), DirectIO.stagingBytes) == 0, let memory else { return nil }
            self.memory = memory
        }
        deinit { free(memory) }
    }

    private struct State {
        var usable = true
        var idle: [Staging] = []
    }
    private let state = Locked(State())

    public init() {}

    /// False once the file system refused a direct transfer: everything goes through the cache.
    public var isUsable: Bool { state.withLock { $0.usable } }

    func refused() { state.withLock { $0.usable = false } }

    /// Runs `body` with a staging buffer of `stagingBytes`, taken from the idle ones or made.
    func withStaging<T>(_ body: (UnsafeMutableRawPointer) throws(StorageError) -> T) throws(StorageError) -> T {
        let taken = state.withLock { $0.idle.popLast() }
        guard let staging = taken ?? Staging() else { throw .io("no memory for an aligned staging buffer") }
        defer { state.withLock { s in if s.idle.count < Self.keptBuffers { s.idle.append(staging) } } }
        return try body(staging.memory)
    }

    /// Offsets and lengths beyond this are refused before any arithmetic (far past any file).
    static let largest = UInt64(Int64.max / 4)

    /// A descriptor of its own, with `O_DIRECT`, on the file open as `fd` (the same file
    /// even if it was deleted meanwhile); -1 when that fails. EINVAL means the file system
    /// refuses direct I/O.
    static func reopenDirect(_ fd: CInt, _ access: CInt) -> CInt {
        open("/proc/self/fd/\(fd)", access | flag | O_CLOEXEC)
    }

    /// The whole blocks inside `count` bytes at `offset`: where they start and how many
    /// bytes they cover; nil when the range holds none.
    public static func blocks(at offset: UInt64, count: UInt64) -> (start: UInt64, count: UInt64)? {
        guard offset <= largest, count <= largest else { return nil }
        let start = (offset + (blockSize - 1)) / blockSize * blockSize
        let last = (offset + count) / blockSize * blockSize
        guard last > start else { return nil }
        return (start, last - start)
    }

    /// Writes the whole blocks of `bytes` (bound for `offset` of the file at `path`) direct.
    /// Returns the file range written, for the caller to write the bytes before and after
    /// it through the cache; nil when nothing was written (no whole block, or the file
    /// system refuses direct writes). Blocking: call it on a thread pool.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, path: String) throws(StorageError) -> (start: UInt64, count: UInt64)? {
        guard isUsable, Self.blocks(at: offset, count: UInt64(bytes.count)) != nil else { return nil }
        let fd = open(path, O_WRONLY | Self.flag | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == EINVAL { refused() }
            return nil
        }
        defer { close(fd) }
        return try write(bytes, at: offset, fd: fd)
    }

    /// `write(_:at:path:)` into a file already open with `flag` as `fd`.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, fd: CInt) throws(StorageError) -> (start: UInt64, count: UInt64)? {
        guard isUsable, let blocks = Self.blocks(at: offset, count: UInt64(bytes.count)), let base = bytes.baseAddress else { return nil }
        let source = base + Int(blocks.start - offset)
        return try withStaging { (staging) throws(StorageError) -> (start: UInt64, count: UInt64)? in
            var done = 0
            while UInt64(done) < blocks.count {
                let chunk = min(Self.stagingBytes, Int(blocks.count) - done)
                staging.copyMemory(from: source + done, byteCount: chunk)
                var written = 0
                while written < chunk {
                    let n = pwrite(fd, staging + written, chunk - written, off_t(blocks.start) + off_t(done + written))
                    if n < 0 && errno == EINTR { continue }
                    if n < 0 && errno == EINVAL && done == 0 && written == 0 {
                        refused()
                        return nil
                    }
                    if n < 0 && (errno == ENOSPC || errno == EDQUOT) { throw .noSpace("writing \(bytes.count) bytes at \(offset)") }
                    guard n > 0 else { throw .io("direct write failed: \(n == 0 ? "no progress" : String(cString: strerror(errno)))") }
                    written += n
                }
                done += chunk
            }
            return blocks
        }
    }

    /// Reads `length` bytes at a block-aligned `offset` of the file open as `fd`, direct,
    /// handing them to `consume` in order, a staging buffer's worth at a time. False when
    /// nothing was read: an unaligned offset, or direct reads refused; the caller reads
    /// through the cache instead. The file is reopened by its descriptor, so a file deleted
    /// meanwhile is still the one read. Blocking: call it on a thread pool.
    func read(fd: CInt, offset: UInt64, length: UInt64,
              into consume: (UnsafeRawBufferPointer) throws(StorageError) -> Void) throws(StorageError) -> Bool {
        guard isUsable, offset % Self.blockSize == 0, length > 0, offset <= Self.largest, length <= Self.largest else { return false }
        let direct = Self.reopenDirect(fd, O_RDONLY)
        guard direct >= 0 else {
            if errno == EINVAL { refused() }
            return false
        }
        defer { close(direct) }
        return try withStaging { (staging) throws(StorageError) -> Bool in
            var done: UInt64 = 0
            while done < length {
                let want = Int(min(UInt64(Self.stagingBytes), length - done))
                // Whole blocks are asked for; the file's end cuts the last one short.
                let asked = (want + Int(Self.blockSize) - 1) / Int(Self.blockSize) * Int(Self.blockSize)
                var got = 0
                while got < want {
                    let n = pread(direct, staging + got, asked - got, off_t(offset + done) + off_t(got))
                    if n < 0 && errno == EINTR { continue }
                    if n < 0 && errno == EINVAL && done == 0 && got == 0 {
                        refused()
                        return false
                    }
                    guard n > 0 else { throw .io("short read at \(offset + done + UInt64(got))") }
                    got += n
                    // A read that ended off a block boundary reached the file's end.
                    if got < want && got % Int(Self.blockSize) != 0 { throw .io("short read at \(offset + done + UInt64(got))") }
                }
                try consume(UnsafeRawBufferPointer(start: staging, count: want))
                done += UInt64(want)
            }
            return true
        }
    }
}
