#if canImport(Glibc)
import Glibc
#endif
import Locking

/// Writes into a file that bypass the page cache (`O_DIRECT`), for copies of content the
/// store holds. A user's output file written through the cache is a cached copy of bytes
/// the store holds already, and on a VM each fresh page-cache page costs a host fault
/// (about 3 CPU-s per GiB on our machines, against 0.2 for the same bytes written direct;
/// BENCHMARKS.md, session 15). Block-aligned ranges of the store are read direct too, so
/// the copy fills no cache on either side (`DirectIO`).
///
/// `O_DIRECT` moves whole blocks at block-aligned offsets from aligned memory, so this
/// writer takes only the whole blocks of a range (`blocks(at:count:)`) and stages them
/// through its own aligned buffer; the caller writes the unaligned head and tail some
/// other way. Each block is written by one path only, so the two never overlap, and the
/// kernel keeps the cache coherent with direct writes in any case.
public final class UncachedWriter: @unchecked Sendable {
    public static let blockSize = DirectIO.blockSize
    public static let stagingBytes = 1 << 20

    public enum Outcome: Equatable, Sendable {
        case copied
        /// The file system refused a direct write; nothing was written by this call, and
        /// the writer declines every later call the same way.
        case unsupported
        /// A read or write failed with this errno (a full disk, say); some blocks may be written.
        case failed(Int32)
    }

    private let fd: Int32
    /// Aligned memory the blocks pass through; used only under `state`'s lock, which also
    /// records whether direct writes still work.
    private let staging: UnsafeMutableRawPointer
    private let state = Locked<Bool>(true)

    /// Opens `name` in `directory` (an existing file) for direct writes; nil where the file
    /// system or the kernel refuses `O_DIRECT`.
    public init?(directory: Int32, name: String) {
        let fd = openat(directory, name, O_WRONLY | DirectIO.flag | O_NOFOLLOW | O_CLOEXEC)
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
        DirectIO.blocks(at: destination, count: count)
    }

    /// Copies `count` bytes read from `input` at `offset` to `destination` in the file.
    /// `destination` and `count` must be whole blocks (`blocks(at:count:)`). Blocking: call
    /// it on a thread pool.
    public func copy(from input: Int32, offset: UInt64, count: UInt64, to destination: UInt64) -> Outcome {
        guard destination % Self.blockSize == 0, count % Self.blockSize == 0,
              count <= DirectIO.largest, offset <= DirectIO.largest, destination <= DirectIO.largest else { return .failed(EINVAL) }
        return state.withLock { usable in
            guard usable else { return .unsupported }
            // The store's blocks are read direct when they are whole blocks of its file too.
            let directInput = offset % Self.blockSize == 0 ? DirectIO.reopenDirect(input, O_RDONLY) : -1
            defer { if directInput >= 0 { close(directInput) } }
            var source = directInput >= 0 ? directInput : input
            var done: UInt64 = 0
            while done < count {
                let chunk = Int(min(count - done, UInt64(Self.stagingBytes)))
                var filled = 0
                while filled < chunk {
                    let n = pread(source, staging + filled, chunk - filled, off_t(offset + done) + off_t(filled))
                    if n < 0 && errno == EINTR { continue }
                    if n < 0 && errno == EINVAL && source != input {
                        source = input
                        continue
                    }
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
