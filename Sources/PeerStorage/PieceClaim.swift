import Locking

/// The right to write one piece's bytes into a task's content file before the piece is
/// recorded. A task holds at most one claim per piece, so unverified bytes arriving from
/// one sender never interleave with another copy's. A whole copy whose digest is already
/// checked (`writePiece`) takes the claim over: the writer it replaces finishes the write it
/// is in and makes no other, so once `takeOver` returns the file region is the new
/// writer's alone.
final class PieceClaim: Sendable {
    private let superseded = Locked(false)

    /// Runs `body` (a write to the region, or recording the piece) unless the claim was
    /// taken over; nil if it was. `body` runs under the claim's lock, on a pool thread.
    func ifCurrent<T>(_ body: () throws(StorageError) -> T) throws(StorageError) -> T? {
        try superseded.withLock { (gone: inout Bool) throws(StorageError) -> T? in
            gone ? nil : try body()
        }
    }

    /// Stops this claim's writer; waits for a write it is making to end.
    func takeOver() {
        superseded.withLock { $0 = true }
    }

    var isSuperseded: Bool { superseded.withLock { $0 } }
}
