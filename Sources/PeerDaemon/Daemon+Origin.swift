import AsyncHTTPClient
import DragonflyCommon
import GeneratedAPI
import PeerStorage
import RPCCore

extension Daemon {
    /// Fetches `pieces` from the origin, `concurrentPieceCount` at a time; each piece is
    /// stored (digest computed) before it is reported. `onPiece` tells the scheduler.
    /// An origin that ignores Range (a plain static server, many CDNs for small files, a
    /// dynamic endpoint) is noticed at its first 200 to a ranged GET: the rest comes from one
    /// whole response instead, cut into pieces as it arrives.
    func fetchFromOrigin(_ plan: DownloadPlan, pieces: [PieceLayout.Piece], report: @escaping PieceReport,
                         onPiece: (@Sendable (Common_V2_Piece) async -> Void)?) async throws {
        guard !pieces.isEmpty else { return }
        do {
            do {
                try await fetchRangesFromOrigin(plan, pieces: pieces, report: report, onPiece: onPiece)
            } catch let ignored as RangeIgnored {
                plan.log.info("origin ignores Range (\(ignored.error)); reading its whole response in order")
                try await streamFromOrigin(plan, report: report, onPiece: onPiece)
            }
        } catch let changed as ContentChanged {
            // Pieces of two versions must never make one task: none of them is kept.
            plan.log.warning("dropping every stored piece: \(changed.error.message)")
            try? await store.delete(taskID: plan.taskID)
            throw backendError(changed.error)
        }
    }

    /// Ranged GETs, `concurrentPieceCount` at a time.
    private func fetchRangesFromOrigin(_ plan: DownloadPlan, pieces: [PieceLayout.Piece], report: @escaping PieceReport,
                                       onPiece: (@Sendable (Common_V2_Piece) async -> Void)?) async throws {
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

    /// A ranged GET of one piece, stored as it arrives; retried with backoff (0.2 s, 0.4 s)
    /// when the connection or a 5xx fails; a 4xx or a wrong-sized body is final. Nil when
    /// the piece turned out to be stored already.
    private func getWithRetries(_ plan: DownloadPlan, _ piece: PieceLayout.Piece) async throws -> IncomingPiece? {
        try await withOriginRetries(plan) {
            try await origin.get(plan.download.url, headers: plan.headers, offset: piece.offset, length: piece.length,
                                 expecting: plan.validators) {
                try await self.store.receivePiece(taskID: plan.taskID, number: piece.number)
            }
        }
    }

    private func withOriginRetries<T>(_ plan: DownloadPlan, _ attemptOnce: () async throws -> T) async throws -> T {
        var delay: Duration = .milliseconds(200)
        for attempt in 1...3 {
            do {
                return try await attemptOnce()
            } catch let error as StorageError {
                // The store, not the origin, failed: retrying the origin will not help.
                if case .noSpace(let what) = error { throw RPCError(code: .resourceExhausted, message: "no space left in the cache: \(what)") }
                throw RPCError(code: .internal, message: "\(error)")
            } catch let error as OriginError where error.rangeIgnored {
                throw RangeIgnored(error: error)
            } catch let error as OriginError where error.contentChanged {
                throw ContentChanged(error: error)
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
        // The origin's errors pass as they are; the store's are told apart below.
        let incoming = try await getWithRetries(plan, piece)
        let stored: TaskMetadata.Piece
        do {
            if let incoming {
                stored = try await incoming.commit()
            } else if let here = try await store.metadata(plan.taskID).pieces[piece.number] {
                // Stored meanwhile by another fetch: reported as this one would have been.
                stored = here
            } else {
                return
            }
        } catch .noSpace(let what) {
            throw RPCError(code: .resourceExhausted, message: "no space left in the cache: \(what)")
        } catch {
            throw RPCError(code: .internal, message: "\(error)")
        }
        recordPiece(source: "back_to_source", bytes: Int(clamping: stored.length), cost: ContinuousClock.now - start, task: plan.taskID)
        let reported = Common_V2_Piece(stored, traffic: .backToSource, cost: ContinuousClock.now - start)
        await onPiece?(reported)
        try await report(reported)
    }

    func keepOriginPiece(_ plan: DownloadPlan, _ piece: PieceLayout.Piece, _ bytes: [UInt8], since start: ContinuousClock.Instant,
                                 report: PieceReport, onPiece: (@Sendable (Common_V2_Piece) async -> Void)?) async throws {
        let stored: TaskMetadata.Piece
        do {
            stored = try await store.writePiece(taskID: plan.taskID, number: piece.number, bytes: bytes)
        } catch .noSpace(let what) {
            throw RPCError(code: .resourceExhausted, message: "no space left in the cache: \(what)")
        } catch {
            throw RPCError(code: .internal, message: "\(error)")
        }
        recordPiece(source: "back_to_source", bytes: bytes.count, cost: ContinuousClock.now - start, task: plan.taskID)
        let reported = Common_V2_Piece(stored, traffic: .backToSource, cost: ContinuousClock.now - start)
        await onPiece?(reported)
        try await report(reported)
    }

    /// Reads one whole response in order and cuts it at the task's piece boundaries; pieces
    /// already stored are read past, the others stored and reported as they complete. More
    /// or fewer bytes than the length the origin announced is an error (its content changed,
    /// or the body was cut short), and what was not a whole piece is never stored. One
    /// attempt: a second full read of a large file is the caller's retry to make.
    private func streamFromOrigin(_ plan: DownloadPlan, report: PieceReport,
                                  onPiece: (@Sendable (Common_V2_Piece) async -> Void)?) async throws {
        let pieces = plan.layout.pieces()
        let stored = Set((try? await store.metadata(plan.taskID))?.pieces.keys ?? [:].keys)
        let response: HTTPClientResponse
        do {
            response = try await origin.getWhole(plan.download.url, headers: plan.headers, expecting: plan.validators)
        } catch let error as OriginError where error.contentChanged {
            throw ContentChanged(error: error)
        } catch let error as OriginError {
            throw backendError(error)
        }
        var index = 0
        var buffer: [UInt8] = []
        var start = ContinuousClock.now
        var received: UInt64 = 0
        do {
            for try await var chunk in response.body {
                received += UInt64(chunk.readableBytes)
                while chunk.readableBytes > 0 {
                    guard index < pieces.count else {
                        throw ContentChanged(error: OriginError(
                            message: "origin sent more than the \(plan.layout.contentLength) bytes it announced: its content changed", contentChanged: true))
                    }
                    let piece = pieces[index]
                    let wanted = Int(piece.length) - buffer.count
                    let take = min(wanted, chunk.readableBytes)
                    if buffer.isEmpty { buffer.reserveCapacity(Int(piece.length)) }
                    buffer += chunk.readBytes(length: take) ?? []
                    guard buffer.count == Int(piece.length) else { continue }
                    if !stored.contains(piece.number) {
                        try await backToSourceLimit.take(buffer.count)
                        try await downloadLimit.take(buffer.count)
                        try await plan.limit.take(buffer.count)
                        try await keepOriginPiece(plan, piece, buffer, since: start, report: report, onPiece: onPiece)
                    }
                    buffer.removeAll(keepingCapacity: true)
                    index += 1
                    start = .now
                }
            }
        } catch let error as ContentChanged {
            throw error
        } catch let error as OriginError {
            throw backendError(error)
        } catch let error as RPCError {
            throw error
        } catch {
            throw backendError(OriginError(message: "origin body ended after \(received) of \(plan.layout.contentLength) bytes (truncated?): \(error)"))
        }
        guard index == pieces.count else {
            throw backendError(OriginError(message: "origin body ended after \(received) of \(plan.layout.contentLength) bytes (truncated?)"))
        }
    }
}

/// A ranged GET was answered with the whole content.
struct RangeIgnored: Error {
    let error: OriginError
}

/// The origin's content is not the version the download began with.
struct ContentChanged: Error {
    let error: OriginError
}
