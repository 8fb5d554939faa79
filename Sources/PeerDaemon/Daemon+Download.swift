import DragonflyCommon
import Foundation
import GeneratedAPI
import Logging
import NIOPosix
import PeerStorage
import RPCCore
import Locking

/// What a download needs to know once the task's size is known.
struct DownloadPlan: Sendable {
    let taskID: String
    let peerID: String
    let download: Common_V2_Download
    let layout: PieceLayout
    let headers: [String: String]
    /// The daemon's logger with the task and peer ids, for every line about this download.
    let log: Logger
    /// This task's download budget (`download.perPeerRateLimit`), from parents and origin alike.
    let limit: TokenBucket
    /// What the origin's HEAD said identifies this content; every GET must agree.
    var validators = OriginValidators()
}

/// Who asked for a download; it decides what the request may do.
public enum DownloadCaller: Sendable {
    /// A local client (dfget) on the unix socket, or over mutual TLS where that is allowed:
    /// the only caller that may name an output path.
    case local
    /// The scheduler or the manager through the upload service (a seed peer's fetch, a
    /// preheat): may not name an output path.
    case cluster
    /// The registry mirror, for a client pulling through it.
    case mirror
}

extension Daemon {
    /// Downloads a task and reports progress: first `started` (length and piece list),
    /// then each piece as it lands. Writes `output_path` when a local caller names one.
    public func download(_ request: Common_V2_Download, caller: DownloadCaller,
                         started: @Sendable (Dfdaemon_V2_DownloadTaskStartedResponse, String, String) async throws -> Void,
                         piece report: @escaping PieceReport) async throws {
        if let refusal = await config.originPolicy.refusal(for: request.url) {
            throw RPCError(code: .permissionDenied, message: refusal)
        }
        // Checked before anything is fetched: a refused path costs the origin nothing.
        let output: OutputTarget?
        if caller == .local, let path = request.outputPath, !path.isEmpty {
            let target = try OutputTarget.check(path, allowed: config.allowedOutputDirs)
            try target.preflight()
            output = target
        } else {
            output = nil
        }
        if let requested = request.pieceLength, !PieceLayout.allowedPieceLengths.contains(requested) {
            throw RPCError(code: .invalidArgument, message: "piece_length \(requested) is outside \(PieceLayout.allowedPieceLengths) bytes")
        }
        let taskID: String
        do {
            taskID = try TaskID.standard(url: request.url, tag: request.tag, application: request.application,
                                         pieceLength: request.pieceLength, filteredQueryParams: request.filteredQueryParams)
        } catch {
            throw RPCError(code: .invalidArgument, message: "\(error)")
        }
        let contentDigest: ContentDigest?
        do { contentDigest = try request.digest.map { try ContentDigest(parsing: $0) } } catch {
            throw RPCError(code: .invalidArgument, message: "invalid digest(\(request.digest ?? "")): \(error)")
        }
        let peerID = PeerIdentity.peerID(ip: config.ip, hostname: config.hostname, seed: config.seedPeer)

        // A complete local copy is served at once, after checking the digest the caller gave,
        // if any. Its pieces are not read again: outputs are copies, so nothing outside the
        // store's 0700 directory can have changed them since they were checked on arrival.
        if let m = try? await store.metadata(taskID), m.finished {
            if let contentDigest { try await checkDigest(taskID, contentDigest, url: request.url) }
            try await started(startedResponse(m, finished: true), taskID, peerID)
            for p in m.pieces.values.sorted(by: { $0.number < $1.number }) {
                try await report(Common_V2_Piece(p, traffic: .localPeer))
            }
            metrics.counter("download_task_total", [("type", "local")], help: "Tasks downloaded, by where the bytes came from").increment()
            if let output { try await writeOutput(output, taskID) }
            return
        }

        let info: OriginInfo
        do {
            info = try await origin.head(request.url, headers: request.requestHeader)
        } catch let error as OriginError {
            throw error.refused ? RPCError(code: .permissionDenied, message: error.message) : backendError(error)
        }
        let layout: PieceLayout
        do {
            layout = try PieceLayout.checked(contentLength: info.contentLength, requestedPieceLength: request.pieceLength ?? config.pieceLength)
        } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
        let meta: TaskMetadata
        do {
            meta = try await store.open(taskID: taskID, url: request.url, contentLength: layout.contentLength, pieceLength: layout.pieceLength)
        } catch {
            throw RPCError(code: .internal, message: "\(error)")
        }
        // The output fills as pieces land, rather than in one copy once all are here.
        let file: OutputFile?
        if let output {
            let length = layout.contentLength
            file = try await NIOThreadPool.singleton.runIfActive { try OutputFile(output, length: length) }
        } else {
            file = nil
        }
        try await started(startedResponse(meta, finished: false, headers: info.headers), taskID, peerID)
        for p in meta.pieces.values.sorted(by: { $0.number < $1.number }) {
            if let file { try await copyPiece(p, of: taskID, into: file) }
            try await report(Common_V2_Piece(p, traffic: .localPeer))
        }
        var log = logger
        log[metadataKey: "task_id"] = "\(taskID)"
        log[metadataKey: "peer_id"] = "\(peerID)"
        log.info("download started", metadata: ["url": "\(LogRedaction.url(request.url))",
                                                "content_length": "\(layout.contentLength)", "pieces_stored": "\(meta.pieces.count)"])
        let began = ContinuousClock.now
        let plan = DownloadPlan(taskID: taskID, peerID: peerID, download: request, layout: layout,
                                headers: request.requestHeader, log: log,
                                limit: TokenBucket(bytesPerSecond: config.perTaskDownloadRateLimit),
                                validators: OriginValidators(headers: info.headers, contentLength: info.contentLength))
        // A fetch nobody waits for any more is stopped: one client must not leave the origin
        // busy for nothing. A seed peer's fetches go on, since the cluster counts on them (the
        // scheduler's seed trigger, a preheat); elsewhere the manager's preheat waits to the end.
        let job = sharedFetch(plan, keepWithoutWaiters: config.seedPeer)
        defer { job.leave() }
        // Every requester follows the store: pieces are reported as they land, whoever
        // fetched them, so concurrent requests for one task share one download.
        var reported = Set(meta.pieces.keys)
        var fromOrigin = false
        while true {
            // Looked at before the state, so a change in between still wakes the wait below.
            let seen = store.changes.version(taskID)
            let outcome = job.outcome
            if let m = try? await store.metadata(taskID) {
                for p in m.pieces.values.sorted(by: { $0.number < $1.number }) where !reported.contains(p.number) {
                    reported.insert(p.number)
                    if p.parentID == nil { fromOrigin = true }
                    if let file { try await copyPiece(p, of: taskID, into: file) }
                    try await report(Common_V2_Piece(p, traffic: p.parentID == nil ? .backToSource : .remotePeer))
                }
            }
            if let outcome {
                do { try outcome.get() } catch {
                    log.error("download failed: \(error)")
                    if error.code == .resourceExhausted {
                        // A task that cannot fit must not keep the space it took from the next one.
                        try? await store.delete(taskID: taskID)
                    }
                    throw error
                }
                break
            }
            // Woken by a landed piece or the fetch's end; the timeout only bounds a missed case.
            await store.changes.wait(taskID, after: seen, timeout: .seconds(5))
            try Task.checkCancellation()
        }
        if let contentDigest { try await checkDigest(taskID, contentDigest, url: request.url) }
        log.info("download finished", metadata: ["source": "\(fromOrigin ? "back_to_source" : "peers")",
                                                 "cost": "\(ContinuousClock.now - began)"])
        metrics.counter("download_task_total", [("type", fromOrigin ? "back_to_source" : "p2p")],
                        help: "Tasks downloaded, by where the bytes came from").increment()
        if let file {
            // Every piece was copied as it was reported; a piece the loop has not seen (the
            // fetch ended between looks) is copied now.
            for p in try await store.metadata(taskID).pieces.values where !reported.contains(p.number) {
                try await copyPiece(p, of: taskID, into: file)
            }
            try await NIOThreadPool.singleton.runIfActive { try file.commit() }
        }
    }

    private func copyPiece(_ piece: TaskMetadata.Piece, of taskID: String, into file: OutputFile) async throws {
        let source = contentPath(taskID)
        try await NIOThreadPool.singleton.runIfActive { try file.copy(from: source, offset: piece.offset, length: piece.length) }
    }

    /// Copies the task to the caller's file on the thread pool: a GiB copy must not hold
    /// one of the few threads every task of the daemon runs on.
    func writeOutput(_ output: OutputTarget, _ taskID: String) async throws {
        let source = contentPath(taskID)
        try await NIOThreadPool.singleton.runIfActive { try output.write(from: source) }
    }

    func contentPath(_ taskID: String) -> String { store.directory.appendingPathComponent("content/\(taskID)").path }

    /// Fails this request when the task's content does not match `digest`. The task stays:
    /// its pieces match what the origin sent, and another client's request (or a later one
    /// with the right digest) must not lose them because this caller named a wrong digest.
    /// Unless the URL's path names that digest (a registry blob): then the content is wrong
    /// for everyone, and is dropped so a repaired origin is fetched afresh.
    func checkDigest(_ taskID: String, _ digest: ContentDigest, url: String) async throws {
        do {
            try await store.verify(taskID: taskID, contentDigest: digest)
        } catch {
            logger.warning("task \(taskID): \(error)")
            if let path = URLComponents(string: url)?.path, path.lowercased().contains(digest.description.lowercased()) {
                try? await store.delete(taskID: taskID)
            }
            throw RPCError(code: .internal, message: "\(error)")
        }
    }

    /// The fetch of a task's missing pieces, started once however many ask for the task.
    /// The caller is counted as waiting on it until it calls `leave()`.
    func sharedFetch(_ plan: DownloadPlan, keepWithoutWaiters: Bool) -> FetchJob {
        inflight.withLock { map in
            if let job = map[plan.taskID], job.join(keepWithoutWaiters: keepWithoutWaiters) { return job }
            let job = FetchJob(keepWithoutWaiters: keepWithoutWaiters)
            map[plan.taskID] = job
            let changes = store.changes
            job.start(onEnd: { changes.signal(plan.taskID) }) {
                defer { self.inflight.withLock { if $0[plan.taskID] === job { $0.removeValue(forKey: plan.taskID) } } }
                // The job, not a waiter, marks the task complete: a fetch that goes on after its
                // caller left (a seed's, a preheat) must still end up served to others.
                guard try await !self.missingPieces(plan).isEmpty else { return try await self.markFinished(plan.taskID) }
                // `disable_back_to_source`: the origin may be asked what the content is (its
                // HEAD, above) but never for its bytes; a download peers cannot finish fails.
                let originAllowed = !plan.download.disableBackToSource
                if plan.layout.contentLength > 0, let address = self.scheduler(for: plan.taskID) {
                    do {
                        do {
                            try await self.downloadThroughScheduler(plan, scheduler: address, report: { _ in })
                        } catch let error as RPCError where error.code == .notFound && error.message.hasPrefix("host ") {
                            // The scheduler restarted and forgot this host: announce it, try once more.
                            plan.log.info("scheduler \(address) does not know this host; announcing it again")
                            await self.announceHost(to: address)
                            try await self.downloadThroughScheduler(plan, scheduler: address, report: { _ in })
                        }
                    } catch {
                        try Task.checkCancellation()
                        guard originAllowed else {
                            throw RPCError(code: .unavailable, message: "download from peers failed and back-to-source is disabled: \(error)")
                        }
                        // A pull never fails because Dragonfly did: what is missing comes from the origin.
                        plan.log.warning("P2P failed (\(error)); fetching the rest from the origin")
                    }
                } else if !originAllowed && plan.layout.contentLength > 0 {
                    throw RPCError(code: .unavailable, message: "no scheduler to find peers with, and back-to-source is disabled")
                }
                let complete = try await self.missingPieces(plan).isEmpty
                guard originAllowed || complete else {
                    throw RPCError(code: .unavailable, message: "peers did not have every piece, and back-to-source is disabled")
                }
                try await self.fetchFromOrigin(plan, pieces: self.missingPieces(plan), report: { _ in }, onPiece: nil)
                try await self.markFinished(plan.taskID)
            }
            return job
        }
    }

    /// Marks the task complete, so it is served from the cache from now on.
    func markFinished(_ taskID: String) async throws {
        do {
            try await store.finish(taskID: taskID)
        } catch {
            throw RPCError(code: .internal, message: error.description)
        }
    }

    func missingPieces(_ plan: DownloadPlan) async throws -> [PieceLayout.Piece] {
        let have = (try? await store.metadata(plan.taskID).pieces) ?? [:]
        return plan.layout.pieces().filter { have[$0.number] == nil }
    }

    func startedResponse(_ m: TaskMetadata, finished: Bool, headers: [String: String] = [:]) -> Dfdaemon_V2_DownloadTaskStartedResponse {
        var r = Dfdaemon_V2_DownloadTaskStartedResponse()
        r.contentLength = m.contentLength
        r.responseHeader = headers.isEmpty ? m.responseHeader : headers
        r.isFinished = finished
        let layout = PieceLayout(contentLength: m.contentLength, pieceLength: m.pieceLength)
        r.pieces = layout.pieces().map { p in
            Common_V2_Piece.with {
                $0.number = p.number
                $0.offset = p.offset
                $0.length = p.length
                $0.digest = m.pieces[p.number]?.digest ?? ""
            }
        }
        return r
    }

    /// The origin's failure as Dragonfly reports it: INTERNAL, with `errordetails.v2.Backend`
    /// as JSON in the status details (what the Rust dfget decodes).
    func backendError(_ error: OriginError) -> RPCError {
        var details: [String: Any] = ["message": error.message, "header": [String: String]()]
        if let code = error.statusCode { details["status_code"] = code }
        let json = (try? JSONSerialization.data(withJSONObject: details, options: [.sortedKeys])).map { [UInt8]($0) }
        return RPCError(code: .internal, message: error.description, details: json)
    }
}

/// One running fetch, who waits on it, and, once it ends, how it ended.
final class FetchJob: Sendable {
    private struct State {
        var result: Result<Void, RPCError>?
        var task: Task<Void, Never>?
        var waiters = 1
        var keepWithoutWaiters: Bool
        var cancelled = false
    }
    private let state: Locked<State>

    init(keepWithoutWaiters: Bool) { state = Locked(State(keepWithoutWaiters: keepWithoutWaiters)) }

    var outcome: Result<Void, RPCError>? { state.withLock { $0.result } }

    /// Counts one more waiter; false when the job was already stopped (start another).
    func join(keepWithoutWaiters: Bool) -> Bool {
        state.withLock { s in
            guard !s.cancelled else { return false }
            s.waiters += 1
            if keepWithoutWaiters { s.keepWithoutWaiters = true }
            return true
        }
    }

    /// A waiter is gone; the last one stops the fetch unless it is to be kept.
    func leave() {
        let stop: Task<Void, Never>? = state.withLock { s in
            s.waiters -= 1
            guard s.waiters <= 0, !s.keepWithoutWaiters, s.result == nil else { return nil }
            s.cancelled = true
            return s.task
        }
        stop?.cancel()
    }

    /// Runs `body`; `onEnd` is called once its outcome is recorded, to wake the waiters.
    func start(onEnd: @escaping @Sendable () -> Void, _ body: @escaping @Sendable () async throws -> Void) {
        let task = Task {
            let result: Result<Void, RPCError>
            do {
                try await body()
                result = .success(())
            } catch {
                result = .failure(RPCError.wrapping(error))
            }
            state.withLock { $0.result = result }
            onEnd()
        }
        let cancelNow = state.withLock { s in
            s.task = task
            return s.cancelled
        }
        if cancelNow { task.cancel() }
    }
}
