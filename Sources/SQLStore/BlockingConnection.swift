import Foundation
import NIOPosix

/// Runs a blocking database connection's work one call at a time on a thread of its own,
/// so neither the cooperative pool nor an event loop ever waits on disk or network I/O.
final class BlockingConnection<Handle: AnyObject>: @unchecked Sendable {
    // Only touched on `pool`'s single thread, one job at a time.
    private let handle: Handle
    private let pool: NIOThreadPool

    init(_ handle: Handle) {
        self.handle = handle
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    func run<T: Sendable>(_ work: @escaping @Sendable (Handle) throws -> T) async throws -> T {
        // Safe: the pool has one thread, so the handle is never used by two threads at once.
        nonisolated(unsafe) let handle = self.handle
        return try await pool.runIfActive { try work(handle) }
    }

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
