import DragonflyCommon
import Foundation
import NIOCore
import PeerStorage
import RPCCore
import Synchronization
import VortexProtocol
import VortexTransport

/// Why a piece cannot be served.
enum PieceWaitError: Error {
    /// Not here, and not coming: the task is unknown, or its fetch here has stopped, or the
    /// piece did not arrive within the piece timeout.
    case notHere(String)
    /// Recorded as here, but its bytes cannot be read.
    case unreadable(String)
}

extension Daemon {
    /// Takes an upload slot for `child` (its IP address), or refuses as upstream does when
    /// the peer already serves `upload.concurrentLimit` other hosts: the child then reports
    /// the parent and gets another (or goes to the origin). A child already being served
    /// may open more streams.
    func beginUpload(child: String) throws(RPCError) {
        let limit = config.concurrentUploadLimit
        let taken = uploadsByChild.withLock { children -> Bool in
            guard children[child] != nil || children.count < limit else { return false }
            children[child, default: 0] += 1
            return true
        }
        guard taken else {
            metrics.counter("upload_refused_total", help: "Piece streams refused because upload.concurrentLimit was reached").increment()
            throw RPCError(code: .resourceExhausted, message: "this peer already serves \(limit) hosts (upload.concurrentLimit)")
        }
    }

    func endUpload(child: String) {
        uploadsByChild.withLock { children in
            guard let n = children[child] else { return }
            if n <= 1 { children.removeValue(forKey: child) } else { children[child] = n - 1 }
        }
    }

    /// True while a fetch of the task's missing pieces is running here.
    func isFetching(_ taskID: String) -> Bool {
        inflight.withLock { $0[taskID] != nil } || persistentFetches.withLock { $0[taskID] != nil }
    }

    func countUpload(_ bytes: Int) {
        traffic.sent(bytes)
        metrics.counter("upload_traffic_total", help: "Bytes served to other peers").increment(by: Int64(bytes))
    }

    /// A piece of a task and a handle on the file that holds it. One that is not here yet
    /// is waited for while this peer is still fetching the task (it may be on its way), up
    /// to the piece timeout.
    func waitForPieceFile(taskID: String, number: UInt32) async throws(PieceWaitError) -> (TaskMetadata.Piece, NIOFileHandle) {
        try await waitForStoredPiece(taskID: taskID, number: number) { store throws(StorageError) in
            try await store.openPiece(taskID: taskID, number: number).0
        }
    }

    private func waitForStoredPiece<Body: Sendable>(
        taskID: String, number: UInt32, take: (PieceStore) async throws(StorageError) -> Body
    ) async throws(PieceWaitError) -> (TaskMetadata.Piece, Body) {
        uploadCounts.begin(taskID)
        do {
            let found = try await waitForStoredPieceUncounted(taskID: taskID, number: number, take: take)
            uploadCounts.end(taskID, served: true)
            return found
        } catch {
            uploadCounts.end(taskID, served: false)
            throw error
        }
    }

    private func waitForStoredPieceUncounted<Body: Sendable>(
        taskID: String, number: UInt32, take: (PieceStore) async throws(StorageError) -> Body
    ) async throws(PieceWaitError) -> (TaskMetadata.Piece, Body) {
        let deadline = ContinuousClock.now + config.pieceTimeout
        while true {
            let seen = store.changes.version(taskID)
            // A task this peer does not have at all will not appear by waiting (its store
            // was wiped, or the scheduler is stale): say so at once.
            guard let m = try? await store.metadata(taskID) else { throw .notHere("task \(taskID) is not here") }
            if let p = m.pieces[number] {
                do {
                    return (p, try await take(store))
                } catch {
                    throw .unreadable("\(error)")
                }
            }
            guard number < m.pieceCount || m.pieceCount == 0 else {
                throw .notHere("task \(taskID) has \(m.pieceCount) pieces; there is no piece \(number)")
            }
            guard ContinuousClock.now < deadline else { throw .notHere("piece \(number) of \(taskID) is not here") }
            // Waiting only makes sense while this peer is still fetching the task: if its
            // own download failed, the child should look elsewhere now, not at the timeout.
            guard m.finished || isFetching(taskID) else {
                throw .notHere("piece \(number) of \(taskID) is not here and no download of it is running")
            }
            // Woken when a piece lands or the task's fetch ends.
            await store.changes.wait(taskID, after: seen, timeout: deadline - ContinuousClock.now)
            if Task.isCancelled { throw .notHere("cancelled") }
        }
    }
}

/// The dfdaemon's pieces for Vortex children (Rust dfdaemons, or ours with
/// `download.protocol: tcp`), under the same limits as the piece stream: a connection takes
/// an upload slot, and its pieces share one `upload.rateLimit` budget.
public struct VortexUploadSource: VortexPieceSource {
    let daemon: Daemon
    public init(daemon: Daemon) { self.daemon = daemon }

    final class Budget: VortexConnectionBudget {
        let daemon: Daemon
        let child: String
        init(_ daemon: Daemon, child: String) {
            self.daemon = daemon
            self.child = child
        }

        func willSend(bytes: Int) async throws {
            try await daemon.uploadLimit.take(bytes)
            daemon.countUpload(bytes)
        }

        func finish() { daemon.endUpload(child: child) }
    }

    public func openConnection(from host: String?) throws -> any VortexConnectionBudget {
        let child = host ?? "local"
        do {
            try daemon.beginUpload(child: child)
        } catch {
            // No resource-exhausted code in Vortex; the message says what it is.
            throw VortexErrorPacket(code: .internal, message: error.message)
        }
        return Budget(daemon, child: child)
    }

    /// A connection's memory for a piece read direct: the chunk in hand.
    static let readChunk = 1 << 20

    /// The piece goes out as the store reads it: direct into memory, a chunk at a time, when
    /// the store keeps its content past the page cache (sendfile would fill the cache with
    /// it), else from the page cache by sendfile, its bytes never entering this process.
    /// The child checks them against the digest sent with them.
    public func piece(taskID: String, number: UInt32, kind: VortexPieceKind) async throws -> VortexOutgoingPiece {
        // Each kind is asked for by its own tag, as upstream keeps them apart.
        guard await daemon.pieceKind(of: taskID) == kind else {
            throw VortexErrorPacket(code: .notFound, message: "no \(kind) \(taskID) here")
        }
        let p: TaskMetadata.Piece
        let handle: NIOFileHandle
        do {
            (p, handle) = try await daemon.waitForPieceFile(taskID: taskID, number: number)
        } catch .notHere(let why) {
            throw VortexErrorPacket(code: .notFound, message: why)
        } catch .unreadable(let why) {
            throw VortexErrorPacket(code: .internal, message: why)
        }
        let metadata = PieceContentMetadata(number: p.number, offset: p.offset, length: p.length, digest: p.digest,
                                            parentID: p.parentID ?? "", createdAt: Int64(Date().timeIntervalSince1970))
        guard let offset = Int(exactly: p.offset), let length = Int(exactly: p.length) else {
            try? handle.close()
            throw VortexErrorPacket(code: .internal, message: "piece \(number) lies beyond what this host can address")
        }
        if daemon.store.readsDirect(offset: p.offset) {
            let (store, base) = (daemon.store, p.offset)
            let read: @Sendable (Int, Int) async throws -> ByteBuffer = { start, count in
                do {
                    return try await store.read(handle, offset: base + UInt64(start), length: UInt64(count), after: [])
                } catch {
                    throw VortexErrorPacket(code: .internal, message: "\(error)")
                }
            }
            return VortexOutgoingPiece(metadata: metadata, body: .reader(length: length, chunk: Self.readChunk, read: read,
                                                                         done: { try? handle.close() }), kind: kind)
        }
        return VortexOutgoingPiece(metadata: metadata, body: .file(handle, offset: offset, length: length), kind: kind)
    }
}

extension Daemon {
    /// Sends the task's pieces this peer has (of `interested`, or all), then each one as it
    /// lands, until every one was sent or the piece timeout passes. Fails at once when the
    /// task is incomplete here and nothing is fetching it.
    func syncPieces(_ taskID: String, interested: [UInt32], send: (TaskMetadata.Piece) async throws -> Void) async throws {
        var wanted = Set(interested.prefix(Int(PieceLayout.maxPieceCount)))
        var sent: Set<UInt32> = []
        let deadline = ContinuousClock.now + config.pieceTimeout
        while ContinuousClock.now < deadline {
            let seen = store.changes.version(taskID)
            let m = try? await store.metadata(taskID)
            if let m, wanted.isEmpty { wanted = Set(0..<m.pieceCount) }
            for p in (m?.pieces.values.sorted { $0.number < $1.number } ?? []) where wanted.contains(p.number) && !sent.contains(p.number) {
                sent.insert(p.number)
                try await send(p)
            }
            if !wanted.isEmpty && sent.isSuperset(of: wanted) { return }
            if let m, !m.finished, !isFetching(taskID) {
                throw RPCError(code: .notFound, message: "task \(taskID) is incomplete here and no download of it is running")
            }
            await store.changes.wait(taskID, after: seen, timeout: deadline - ContinuousClock.now)
            try Task.checkCancellation()
        }
        throw RPCError(code: .deadlineExceeded, message: "pieces of \(taskID) did not arrive in time")
    }
}
