#if canImport(Glibc)
import Glibc
#endif
import Locking

/// A second file that a task's pieces are written into as they arrive, at the same
/// offsets as in the store: a client's output while its task downloads. The bytes are
/// written from the memory they arrived in, so the output costs no read of the store.
/// On a machine bound by its disk that is a quarter of the transfers a received GiB
/// costs (the parent's read, the store's write, the output's read and write), and the
/// piece is never read back to be copied (BENCHMARKS.md, session 17).
///
/// Bytes are written before the piece's digest is checked, so the mirror tells its owner
/// only which pieces it holds whole and checked (`holds`); every other piece (one that
/// was here before the mirror, one stored by another path, or a write that failed) is
/// the owner's to copy from the store as before. A failed write here never fails the
/// store's own: the output is the client's, and a full output disk shows up when the
/// owner's own copy of the piece fails.
public final class ContentMirror: Sendable {
    enum PieceState: Equatable {
        /// A writer holds the piece's claim and its bytes are going in.
        case writing
        /// A write failed, or the piece's bytes are not all here.
        case spoiled
        /// Every byte of the piece was written here and the store recorded it with this digest.
        case whole(digest: String)
    }

    private struct State {
        var cached: CInt
        /// -1 where the file system refused `O_DIRECT`; every byte then goes through the cache.
        var direct: CInt
        var retired = false
        var pieces: [UInt32: PieceState] = [:]
    }

    /// Held across each write, so `retire` returns only once no write is in progress and
    /// none follows: the owner may then move the file into place.
    private let state: Locked<State>
    /// Staging for direct writes; its own, so a file system that refuses them here turns
    /// them off for this file alone.
    private let io = DirectIO()

    /// A mirror writing into the file open as `fd` (writable), through descriptors of its
    /// own: the mirror may outlive its owner's descriptor while a write is in flight.
    public init?(duplicating fd: CInt) {
        let cached = dup(fd)
        guard cached >= 0 else { return nil }
        fcntl(cached, F_SETFD, FD_CLOEXEC)
        state = Locked(State(cached: cached, direct: DirectIO.reopenDirect(fd, O_WRONLY)))
    }

    deinit {
        state.withLock { s in
            close(s.cached)
            if s.direct >= 0 { close(s.direct) }
        }
    }

    /// No write reaches the file after this returns.
    public func retire() {
        state.withLock { $0.retired = true }
    }

    /// Whether piece `number` is here whole, as the store recorded it with `digest`.
    public func holds(_ number: UInt32, digest: String) -> Bool {
        state.withLock { $0.pieces[number] == .whole(digest: digest) }
    }

    /// A writer took piece `number`'s claim: what it writes next replaces anything before.
    func begin(_ number: UInt32) {
        state.withLock { $0.pieces[number] = .writing }
    }

    /// Writes `bytes`, part of piece `number`, at `offset`; a failure spoils the piece
    /// here and nothing else. Blocking: call it on a thread pool.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, piece number: UInt32) {
        state.withLock { s in
            guard s.pieces[number] == .writing else { return }
            guard !s.retired else {
                s.pieces[number] = .spoiled
                return
            }
            do {
                var blocks: (start: UInt64, count: UInt64)? = nil
                if s.direct >= 0 {
                    blocks = try io.write(bytes, at: offset, fd: s.direct)
                    if !io.isUsable {
                        close(s.direct)
                        s.direct = -1
                    }
                }
                guard let blocks else {
                    return try PieceStore.writeAll(bytes, to: s.cached, offset: offset, taskID: "an output")
                }
                let head = Int(blocks.start - offset), tail = head + Int(blocks.count)
                try PieceStore.writeAll(UnsafeRawBufferPointer(rebasing: bytes[..<head]), to: s.cached, offset: offset, taskID: "an output")
                try PieceStore.writeAll(UnsafeRawBufferPointer(rebasing: bytes[tail...]), to: s.cached, offset: offset + UInt64(tail),
                                        taskID: "an output")
            } catch {
                s.pieces[number] = .spoiled
            }
        }
    }

    /// The store is recording piece `number` with `digest`, written here by the writer
    /// that began it: it is whole here unless a write failed.
    func land(_ number: UInt32, digest: String) {
        state.withLock { s in
            if !s.retired, s.pieces[number] == .writing { s.pieces[number] = .whole(digest: digest) }
        }
    }
}
