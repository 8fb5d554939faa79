#if canImport(Glibc)
import Glibc
#endif
import Locking

/// Writes into a file that bypass the page cache (`O_DIRECT`), for copies of content the
/// store already holds. A user's output file written through the cache is a second cached
/// copy of bytes the store has cached once already: twice the memory for one file, and on
/// a VM each fresh page-cache page costs a host fault (about 3 CPU-s per GiB on our
/// machines, against 0.2 for the same bytes written direct; BENCHMARKS.md, session 15).
///
/// `O_DIRECT` moves whole blocks at block-aligned offsets from aligned memory, so this
/// writer takes only the whole blocks of a range (`blocks(at:count:)`) and stages them
/// through its own aligned buffer; the caller writes the unaligned head and tail some
/// other way. Each block is written by one path only, so the two never overlap, and the
/// kernel keeps the cache coherent with direct writes in any case.
public final class UncachedWriter: @unchecked Sendable {
    public static let blockSize: UInt64 = 4096
    public static let stagingBytes = 1 << 20

    public enum Outcome: Equatable, Sendable {
        case copied
        /// The file system refused a direct write; nothing was written by this call, and
        /// the writer declines every later call the same way.
        case unsupported
        /// A read or write failed with this errno (a full disk, say); some blocks may be written.
        case failed(Int32)
    }

    /// Glibc's module hides `O_DIRECT` (it needs `_GNU_SOURCE`); the kernel's values.
    #if arch(x86_64)
    private static let directFlag: Int32 = 0o40000
    #elseif arch(arm64)
    private static let directFlag: Int32 = 0o200000
    #endif

    private let fd: Int32
    /// Aligned memory the blocks pass through; used only under `state`'s lock, which also
    /// records whether direct writes still work.
    private let staging: UnsafeMutableRawPointer
    private let state = Locked<Bool>(true)

    /// Opens `name` in `directory` (an existing file) for direct writes; nil where the file
    /// system or the kernel refuses `O_DIRECT`.
    public init?(directory: Int32, name: String) {
        let fd = openat(directory, name, O_WRONLY | Self.directFlag | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var memory: UnsafeMutableRawPointer?
        guard posix_memalign(&memory, Int(Self.blockSize), Self.stagingBytes) == 0, let memory else {
            close(fd)
            return nil
        }
        self.fd = fd
        staging = memory
    }

    deinit {
        close(fd)
        free(staging)
    }

    /// The whole blocks of `count` bytes written at `destination`: where they start and how
    /// many bytes they cover; nil when the range holds no whole block.
    public static func blocks(at destination: UInt64, count: UInt64) -> (start: UInt64, count: UInt64)? {
        guard destination <= UInt64.max - count, destination <= UInt64.max - (blockSize - 1) else { return nil }
        let start = (destination + (blockSize - 1)) / blockSize * blockSize
        let last = (destination + count) / blockSize * blockSize
        guard last > start else { return nil }
        return (start, last - start)
    }

    /// Copies `count` bytes read from `input` at `offset` to `destination` in the file.
    /// `destination` and `count` must be whole blocks (`blocks(at:count:)`). Blocking: call
    /// it on a thread pool.
    public func copy(from input: Int32, offset: UInt64, count: UInt64, to destination: UInt64) -> Outcome {
        guard destination % Self.blockSize == 0, count % Self.blockSize == 0,
              offset <= UInt64(Int64.max) - count, destination <= UInt64(Int64.max) - count else { return .failed(EINVAL) }
        return state.withLock { usable in
            guard usable else { return .unsupported }
            var done: UInt64 = 0
            while done < count {
                let chunk = Int(min(count - done, UInt64(Self.stagingBytes)))
                var filled = 0
                while filled < chunk {
                    let n = pread(input, staging + filled, chunk - filled, off_t(offset + done) + off_t(filled))
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { return .failed(n == 0 ? EIO : errno) }
                    filled += n
                }
                var written = 0
                while written < chunk {
                    let n = pwrite(fd, staging + written, chunk - written, off_t(destination + done) + off_t(written))
                    if n < 0 && errno == EINTR { continue }
                    if n < 0 && errno == EINVAL && done == 0 && written == 0 {
                        usable = false
                        return .unsupported
                    }
                    guard n > 0 else { return .failed(n == 0 ? EIO : errno) }
                    written += n
                }
                done += UInt64(chunk)
            }
            return .copied
        }
    }
}
