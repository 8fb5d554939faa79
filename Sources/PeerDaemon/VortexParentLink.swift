import DragonflyCommon
import GeneratedAPI
import PeerStorage
import RPCCore
import Locking
import VortexProtocol

/// What a parent without our piece stream (a Rust dfdaemon) says it has: its SyncPieces
/// stream, read once for all of the workers fetching from it, gives the pieces it holds and
/// its Vortex address (`ip`, `tcp_port`). Workers take only pieces it has announced.
final class VortexParentLink: Sendable {
    private struct State {
        var started = false
        var announced: Set<UInt32> = []
        var endpoint: (host: String, port: Int)?
        /// Why the stream ended, when it did.
        var ended: String?
        /// The parent closed the stream itself, having announced all it has.
        var endedCleanly = false
        var reader: Task<Void, Never>?
    }

    private let state = Locked(State())
    let parentID: String
    /// The task's pieces: a parent announcing one past them is not believed further.
    private let pieceCount: UInt32
    /// The download's queue signal: what this link learns wakes the workers waiting on it.
    private let changes: ChangeSignal

    init(parentID: String, pieceCount: UInt32, changes: ChangeSignal) {
        self.parentID = parentID
        self.pieceCount = pieceCount
        self.changes = changes
    }

    /// Starts reading the parent's SyncPieces (SyncPersistentPieces or
    /// SyncPersistentCachePieces for those kinds), once, however many workers ask.
    func start(_ daemon: Daemon, address: String, taskID: String, kind: VortexPieceKind = .task) {
        let first = state.withLock { s -> Bool in
            defer { s.started = true }
            return !s.started
        }
        guard first else { return }
        let task = Task {
            do {
                let client = Dfdaemon_V2_DfdaemonUploadClient(RPCClient(transport: try daemon.channel(address)))
                let options = CallOptions(timeout: .seconds(3600))
                switch kind {
                case .persistentCacheTask:
                    let call = try await client.syncPersistentCachePieces(Dfdaemon_V2_SyncPersistentCachePiecesRequest.with {
                        $0.hostId = daemon.config.hostID
                        $0.taskId = taskID
                    }, options: options)
                    for try await piece in call.responses { try announce(piece.number, ip: piece.ip, port: piece.tcpPort, address: address) }
                case .persistentTask:
                    let call = try await client.syncPersistentPieces(Dfdaemon_V2_SyncPersistentPiecesRequest.with {
                        $0.hostId = daemon.config.hostID
                        $0.taskId = taskID
                    }, options: options)
                    for try await piece in call.responses { try announce(piece.number, ip: piece.ip, port: piece.tcpPort, address: address) }
                case .task:
                    let call = try await client.syncPieces(Dfdaemon_V2_SyncPiecesRequest.with {
                        $0.hostId = daemon.config.hostID
                        $0.taskId = taskID
                    }, options: options)
                    for try await piece in call.responses { try announce(piece.number, ip: piece.ip, port: piece.tcpPort, address: address) }
                }
                state.withLock {
                    $0.ended = "its SyncPieces stream ended"
                    $0.endedCleanly = true
                }
            } catch {
                state.withLock { $0.ended = "SyncPieces failed: \(error)" }
            }
            changes.signal("")
        }
        state.withLock { $0.reader = task }
    }

    /// Records a piece the parent has. The set it builds is bounded by the task's pieces,
    /// and the Vortex endpoint is on the host we reached the parent at: the `ip` it names
    /// (its own, from a well-behaved parent) is not followed to another host.
    func announce(_ number: UInt32, ip _: String, port: Int32?, address: String) throws {
        guard number < pieceCount else {
            throw RPCError(code: .outOfRange, message: "announced piece \(number) of a task with \(pieceCount) pieces")
        }
        state.withLock { s in
            s.announced.insert(number)
            if s.endpoint == nil, let port, port > 0 {
                s.endpoint = (hostOf(address), Int(port))
            }
        }
        changes.signal("")
    }

    /// The next piece to fetch from this parent and where, once the parent has announced one
    /// that is still wanted; nil when every piece has arrived. Throws when the parent has no
    /// Vortex port, its stream ended without the pieces, or nothing came within `timeout`.
    func next(from queue: PieceQueue, timeout: Duration) async throws -> (PieceLayout.Piece, host: String, port: Int)? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let seen = changes.version("")
            let (announced, endpoint, ended, cleanly) = state.withLock { ($0.announced, $0.endpoint, $0.ended, $0.endedCleanly) }
            if let endpoint {
                switch queue.take(for: parentID, where: { announced.contains($0.number) }) {
                case .piece(let piece): return (piece, endpoint.host, endpoint.port)
                case .finished: return nil
                // All it has is handed out or here: nothing more will come from this parent.
                case .wait where cleanly: return nil
                case .wait: break
                }
            } else if queue.isFinished {
                return nil
            }
            if !announced.isEmpty && endpoint == nil { throw RPCError(code: .unimplemented, message: "parent \(parentID) advertises no Vortex port") }
            if let ended { throw RPCError(code: .unavailable, message: "parent \(parentID): \(ended)") }
            let now = ContinuousClock.now
            guard now < deadline else {
                throw RPCError(code: .deadlineExceeded, message: "parent \(parentID) announced no wanted piece in time")
            }
            // Woken by an announcement, a piece handed back or landed; at most a second apart
            // so a held piece can be taken over when it is due.
            await changes.wait("", after: seen, timeout: min(deadline - now, .seconds(1)))
            try Task.checkCancellation()
        }
    }

    func stop() {
        state.withLock { $0.reader }?.cancel()
    }
}

private func hostOf(_ address: String) -> String {
    if address.hasPrefix("["), let end = address.firstIndex(of: "]") {
        return String(address[address.index(after: address.startIndex)..<end])
    }
    return String(address.split(separator: ":").first ?? "")
}
