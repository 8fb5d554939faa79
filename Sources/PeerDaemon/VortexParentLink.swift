import DragonflyCommon
import GeneratedAPI
import RPCCore
import Synchronization

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
        var reader: Task<Void, Never>?
    }

    private let state = Mutex(State())
    let parentID: String

    init(parentID: String) { self.parentID = parentID }

    /// Starts reading the parent's SyncPieces, once, however many workers ask.
    func start(_ daemon: Daemon, address: String, taskID: String) {
        let first = state.withLock { s -> Bool in
            defer { s.started = true }
            return !s.started
        }
        guard first else { return }
        let request = Dfdaemon_V2_SyncPiecesRequest.with {
            $0.hostId = daemon.config.hostID
            $0.taskId = taskID
        }
        let task = Task {
            do {
                let client = Dfdaemon_V2_DfdaemonUploadClient(RPCClient(transport: try daemon.channel(address)))
                let call = try await client.syncPieces(request, options: CallOptions(timeout: .seconds(3600)))
                for try await piece in call.responses {
                    state.withLock { s in
                        s.announced.insert(piece.number)
                        if s.endpoint == nil, let port = piece.tcpPort, port > 0 {
                            s.endpoint = (piece.ip.isEmpty ? hostOf(address) : piece.ip, Int(port))
                        }
                    }
                }
                state.withLock { $0.ended = "its SyncPieces stream ended" }
            } catch {
                state.withLock { $0.ended = "SyncPieces failed: \(error)" }
            }
        }
        state.withLock { $0.reader = task }
    }

    /// The next piece to fetch from this parent and where, once the parent has announced one
    /// that is still wanted; nil when nothing is left to fetch. Throws when the parent has no
    /// Vortex port, its stream ended without the pieces, or nothing came within `timeout`.
    func next(from queue: PieceQueue, timeout: Duration) async throws -> (PieceLayout.Piece, host: String, port: Int)? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let found = state.withLock { s -> (PieceLayout.Piece, String, Int)? in
                guard let endpoint = s.endpoint, let piece = queue.take(where: { s.announced.contains($0.number) }) else { return nil }
                return (piece, endpoint.host, endpoint.port)
            }
            if let found { return found }
            if queue.isEmpty { return nil }
            let (ended, hasAnnounced, hasEndpoint) = state.withLock { ($0.ended, !$0.announced.isEmpty, $0.endpoint != nil) }
            if hasAnnounced && !hasEndpoint { throw RPCError(code: .unimplemented, message: "parent \(parentID) advertises no Vortex port") }
            if let ended { throw RPCError(code: .unavailable, message: "parent \(parentID): \(ended)") }
            guard ContinuousClock.now < deadline else {
                throw RPCError(code: .deadlineExceeded, message: "parent \(parentID) announced no wanted piece in time")
            }
            try await Task.sleep(for: .milliseconds(20))
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
