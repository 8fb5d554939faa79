import DragonflyCommon
import GeneratedAPI
import PeerStorage
import RPCCore

extension Daemon {
    /// Fetches `pieces` from the origin, `concurrentPieceCount` at a time; each piece is
    /// stored (digest computed) before it is reported. `onPiece` tells the scheduler.
    func fetchFromOrigin(_ plan: DownloadPlan, pieces: [PieceLayout.Piece], report: @escaping PieceReport,
                         onPiece: (@Sendable (Common_V2_Piece) async -> Void)?) async throws {
        guard !pieces.isEmpty else { return }
        let width = max(1, config.concurrentPieceCount)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func launch() {
                guard next < pieces.count else { return }
                let piece = pieces[next]
                next += 1
                group.addTask { try await self.fetchOnePieceFromOrigin(plan, piece, report: report, onPiece: onPiece) }
            }
            for _ in 0..<width { launch() }
            while try await group.next() != nil { launch() }
        }
    }

    /// A ranged GET, retried with backoff (0.2 s, 0.4 s) when the connection or a 5xx
    /// fails; a 4xx or a wrong-sized body is final.
    func getWithRetries(_ plan: DownloadPlan, _ piece: PieceLayout.Piece) async throws -> [UInt8] {
        var delay: Duration = .milliseconds(200)
        for attempt in 1...3 {
            do {
                return try await origin.get(plan.download.url, headers: plan.headers, offset: piece.offset, length: piece.length)
            } catch let error as OriginError {
                let transient = !error.refused && (error.statusCode.map { $0 >= 500 } ?? !error.message.contains("bytes"))
                if !transient || attempt == 3 { throw backendError(error) }
            } catch {
                if attempt == 3 { throw backendError(OriginError(message: "\(error)")) }
            }
            try await Task.sleep(for: delay)
            delay = delay * 2
        }
        throw backendError(OriginError(message: "unreachable"))
    }

    private func fetchOnePieceFromOrigin(_ plan: DownloadPlan, _ piece: PieceLayout.Piece, report: PieceReport,
                                         onPiece: (@Sendable (Common_V2_Piece) async -> Void)?) async throws {
        let start = ContinuousClock.now
        try await backToSourceLimit.take(Int(clamping: piece.length))
        try await downloadLimit.take(Int(clamping: piece.length))
        try await plan.limit.take(Int(clamping: piece.length))
        let bytes = try await getWithRetries(plan, piece)
        let stored: TaskMetadata.Piece
        do {
            stored = try await store.writePiece(taskID: plan.taskID, number: piece.number, bytes: bytes)
        } catch .noSpace(let what) {
            throw RPCError(code: .resourceExhausted, message: "no space left in the cache: \(what)")
        } catch {
            throw RPCError(code: .internal, message: "\(error)")
        }
        recordPiece(source: "back_to_source", bytes: bytes.count, cost: ContinuousClock.now - start)
        let reported = Common_V2_Piece(stored, traffic: .backToSource, cost: ContinuousClock.now - start)
        await onPiece?(reported)
        try await report(reported)
    }
}
