import DragonflyCommon
import Foundation
import GeneratedAPI
import Logging
import NIOPosix
import PeerStorage
import RPCCore
import Locking
import VortexProtocol

/// What a download needs to know once the task's size is known.
struct DownloadPlan: Sendable {
    let taskID: String
    var peerID: String
    var download: Common_V2_Download
    let layout: PieceLayout
    let headers: [String: String]
    /// The daemon's logger with the task and peer ids, for every line about this download.
    var log: Logger
    /// This task's download budget (`download.perPeerRateLimit`), from parents and origin alike.
    let limit: TokenBucket
    /// What the origin's HEAD said identifies this content; every GET must agree.
    var validators = OriginValidators()
    /// The bytes the caller asked for (`Download.range` or a `Range` header); nil for all.
    var range: ByteRange? = nil
    /// A task, a persistent task or a persistent cache task: parents are asked with the
    /// kind's own Sync*Pieces and Vortex tag, as upstream keeps them apart.
    var kind = VortexPieceKind.task

    /// The pieces this download needs: those covering `range`, or nil for every piece.
    var wanted: Set<UInt32>? {
        range.map { r in Set(layout.pieces(in: (r.first, r.count)).map(\.number)) }
    }
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
        // A caller that names the task's content names its id: any id, another URL's
        // included, whose cached bytes it would then choose. Only a local client (dfget on
        // the unix socket or over mutual TLS) is trusted with that.
        if request.contentForCalculatingTaskId != nil, caller != .local {
            throw RPCError(code: .permissionDenied, message: "content_for_calculating_task_id is taken only from local clients: "
                + "from the network it would let a caller store any bytes under another download's task id")
        }
        let taskID: String
        do {
            taskID = try Self.taskID(of: request)
        } catch {
            throw RPCError(code: .invalidArgument, message: "\(error)")
        }
        guard TaskID.isWellFormed(taskID) else {
            throw RPCError(code: .invalidArgument, message: "the task id this download names is not lowercase hex")
        }
        var contentDigest: ContentDigest?
        do { contentDigest = try request.digest.map { try ContentDigest(parsing: $0) } } catch {
            throw RPCError(code: .invalidArgument, message: "invalid digest(\(request.digest ?? "")): \(error)")
        }
        // A task named by a blob's digest must hold that blob, whoever asked without one.
        if contentDigest == nil, request.contentForCalculatingTaskId == nil, request.enableTaskIdBasedBlobDigest,
           let digest = TaskID.blobDigestOf(url: request.url) {
            contentDigest = digest
        }
        let peerID = PeerIdentity.peerID(ip: config.ip, hostname: config.hostname, seed: config.seedPeer)

        // A complete local copy is served at once, after checking the digest the caller gave,
        // if any. Its pieces are not read again: outputs are copies, so nothing outside the
        // store's 0700 directory can have changed them since they were checked on arrival.
        if let m = try? await store.metadata(taskID), m.finished {
            let range = try Self.requestedRange(request, contentLength: m.contentLength)
            // A range is not the whole content, so it has no digest to check (as upstream).
            if range == nil, let contentDigest { try await checkDigest(taskID, contentDigest, url: request.url) }
            try await started(startedResponse(m, finished: true, range: range), taskID, peerID)
            let layout = PieceLayout(contentLength: m.contentLength, pieceLength: m.pieceLength)
            let wanted = range.map { r in Set(layout.pieces(in: (r.first, r.count)).map(\.number)) }
            for p in m.pieces.values.sorted(by: { $0.number < $1.number }) where wanted?.contains(p.number) ?? true {
                try await report(Common_V2_Piece(p, traffic: .localPeer))
            }
            countDownloadedTask(from: "local")
            stats.record(.cache, bytes: Int(clamping: range?.count ?? m.contentLength), task: taskID)
            if let output {
                if let range {
                    let file = try await NIOThreadPool.singleton.runIfActive { try OutputFile(output, length: range.count) }
                    try await copyRange(range, of: taskID, into: file)
                    try await NIOThreadPool.singleton.runIfActive { try file.commit() }
                } else {
                    try await writeOutput(output, taskID)
                }
            }
            return
        }
        // The origin is asked for the task as a whole; a Range the client sent picks pieces.
        let originHeaders = request.requestHeader.filter { $0.key.lowercased() != "range" }

        let info: OriginInfo
        do {
            info = try await origin.head(request.url, headers: originHeaders)
        } catch let error as OriginError where error.unknownLength {
            // Read to its end first; the complete task is then served as any cached one.
            try await fetchWithoutLength(request, taskID: taskID, headers: originHeaders)
            guard let m = try? await store.metadata(taskID), m.finished else {
                throw RPCError(code: .internal, message: "the length-less origin's task did not complete")
            }
            return try await download(request, caller: caller, started: started, piece: report)
        } catch let error as OriginError {
            throw error.refused ? RPCError(code: .permissionDenied, message: error.message) : backendError(error)
        }
        let layout: PieceLayout
        do {
            layout = try PieceLayout.checked(contentLength: info.contentLength, requestedPieceLength: request.pieceLength ?? config.pieceLength)
        } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
        let range = try Self.requestedRange(request, contentLength: layout.contentLength)
        // Only what names the version (and the type) is kept: other response headers
        // (cookies, say) are the origin's to one client, not the cache's to every caller.
        let kept = info.headers.filter { ["etag", "last-modified", "content-type"].contains($0.key.lowercased()) }
        var meta: TaskMetadata
        do {
            meta = try await store.open(taskID: taskID, url: request.url, contentLength: layout.contentLength,
                                        pieceLength: layout.pieceLength, responseHeader: kept)
            // Pieces from before a restart are of the version their task was opened with; if
            // the origin's validators say it changed since, they are dropped, not mixed in.
            if !meta.pieces.isEmpty, let why = OriginValidators(headers: meta.responseHeader)
                .mismatch(OriginValidators(headers: info.headers)) {
                logger.warning("task \(taskID): the origin's content changed since its pieces were stored (\(why)); starting afresh")
                try await store.delete(taskID: taskID)
                meta = try await store.open(taskID: taskID, url: request.url, contentLength: layout.contentLength,
                                            pieceLength: layout.pieceLength, responseHeader: kept)
            }
        } catch {
            throw RPCError(code: .internal, message: "\(error)")
        }
        // The output fills as pieces land, rather than in one copy once all are here.
        let file: OutputFile?
        if let output {
            let length = range?.count ?? layout.contentLength
            // A whole task's output is written as pieces arrive, from the bytes received.
            file = try await NIOThreadPool.singleton.runIfActive { try OutputFile(output, length: length, mirrored: range == nil) }
        } else {
            file = nil
        }
        let mirror = file?.mirror
        if let mirror { store.attach(mirror, to: taskID) }
        defer { if let mirror { store.detach(mirror, from: taskID) } }
        var plan = DownloadPlan(taskID: taskID, peerID: peerID, download: request, layout: layout,
                                headers: originHeaders, log: logger,
                                limit: TokenBucket(bytesPerSecond: config.perTaskDownloadRateLimit),
                                validators: OriginValidators(headers: info.headers, contentLength: info.contentLength),
                                range: range)
        let wanted = plan.wanted
        try await started(startedResponse(meta, finished: false, headers: info.headers, range: range), taskID, peerID)
        for p in meta.pieces.values.sorted(by: { $0.number < $1.number }) where wanted?.contains(p.number) ?? true {
            if let file { try await copyPiece(p, of: taskID, into: file, range: range) }
            stats.record(.cache, bytes: Int(clamping: p.length), task: taskID)
            try await report(Common_V2_Piece(p, traffic: .localPeer))
        }
        var log = logger
        log[metadataKey: "task_id"] = "\(taskID)"
        log[metadataKey: "peer_id"] = "\(peerID)"
        var rangeText = "all"
        if let range { rangeText = "\(range.first)-\(range.last)" }
        log.info("download started", metadata: ["url": "\(LogRedaction.url(request.url))", "range": "\(rangeText)",
                                                "content_length": "\(layout.contentLength)", "pieces_stored": "\(meta.pieces.count)"])
        plan.log = log
        let began = ContinuousClock.now
        // A fetch nobody waits for any more is stopped: one client must not leave the origin
        // busy for nothing. A seed peer's fetches go on, since the cluster counts on them (the
        // scheduler's seed trigger, a preheat); elsewhere the manager's preheat waits to the end.
        // nil while another fetch of this task runs that does not cover these pieces (one
        // fetch per task at a time); it is joined or started once that one ends.
        var job: FetchJob? = nil
        defer { job?.leave() }
        // Every requester follows the store: pieces are reported as they land, whoever
        // fetched them, so concurrent requests for one task share one download.
        var reported = Set(meta.pieces.keys)
        var fromOrigin = false
        while true {
            // Looked at before the state, so a change in between still wakes the wait below.
            let seen = store.changes.version(taskID)
            if job == nil { job = sharedFetch(plan, keepWithoutWaiters: config.seedPeer) }
            let outcome = job?.outcome
            if let m = try? await store.metadata(taskID) {
                for p in m.pieces.values.sorted(by: { $0.number < $1.number }) where !reported.contains(p.number) {
                    reported.insert(p.number)
                    guard wanted?.contains(p.number) ?? true else { continue }
                    if p.parentID == nil { fromOrigin = true }
                    if let file { try await copyPiece(p, of: taskID, into: file, range: range) }
                    try await report(Common_V2_Piece(p, traffic: p.parentID == nil ? .backToSource : .remotePeer))
                }
            }
            // A range is done once its pieces are here, whatever else is still on its way.
            if let wanted, wanted.isSubset(of: reported) { break }
            if let outcome {
                do { try outcome.get() } catch {
                    log.error("download failed: \(error)")
                    if error.code == .resourceExhausted {
                        // A task that cannot fit must not keep the space it took from the next one.
                        try? await store.delete(taskID: taskID)
                    }
                    throw error
                }
                // A fetch that ended well has every piece it was for; one for other pieces
                // (another caller's range) is followed by this caller's own.
                if wanted == nil { break }
                job?.leave()
                job = nil
                continue
            }
            // Woken by a landed piece or the fetch's end; the timeout only bounds a missed case.
            await store.changes.wait(taskID, after: seen, timeout: .seconds(5))
            try Task.checkCancellation()
        }
        if range == nil, let contentDigest { try await checkDigest(taskID, contentDigest, url: request.url) }
        log.info("download finished", metadata: ["source": "\(fromOrigin ? "back_to_source" : "peers")",
                                                 "cost": "\(ContinuousClock.now - began)"])
        countDownloadedTask(from: fromOrigin ? "back_to_source" : "p2p")
        if let file {
            // Every piece was copied as it was reported; a piece the loop has not seen (the
            // fetch ended between looks) is copied now.
            for p in try await store.metadata(taskID).pieces.values where !reported.contains(p.number) && (wanted?.contains(p.number) ?? true) {
                try await copyPiece(p, of: taskID, into: file, range: range)
            }
            if let mirror { store.detach(mirror, from: taskID) }
            try await NIOThreadPool.singleton.runIfActive { try file.commit() }
        }
        if let range, request.prefetch { prefetchRest(of: plan, after: range) }
    }

    /// Copies the part of `piece` inside `range` (or all of it) to where it belongs in `file`.
    func copyPiece(_ piece: TaskMetadata.Piece, of taskID: String, into file: OutputFile, range: ByteRange?) async throws {
        if file.mirror?.holds(piece.number, digest: piece.digest) == true { return }
        let source = contentPath(taskID)
        let first = max(piece.offset, range?.first ?? 0)
        let end = min(piece.offset + piece.length, range.map { $0.last + 1 } ?? UInt64.max)
        guard end > first else { return }
        let target = first - (range?.first ?? 0)
        try await NIOThreadPool.singleton.runIfActive { try file.copy(from: source, offset: first, length: end - first, to: target) }
    }

    private func copyRange(_ range: ByteRange, of taskID: String, into file: OutputFile) async throws {
        let source = contentPath(taskID)
        try await NIOThreadPool.singleton.runIfActive { try file.copy(from: source, offset: range.first, length: range.count, to: 0) }
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

    /// The fetch of a task's missing pieces (of the plan's range, if it has one), started
    /// once however many ask for them. The caller is counted as waiting on it until it calls
    /// `leave()`. nil while a fetch of this task for other pieces runs: a task has one fetch
    /// at a time, so no piece is fetched twice at once.
    func sharedFetch(_ plan: DownloadPlan, keepWithoutWaiters: Bool) -> FetchJob? {
        let wanted = plan.wanted
        return inflight.withLock { map -> FetchJob? in
            if let job = map[plan.taskID] {
                if job.covers(wanted), job.join(keepWithoutWaiters: keepWithoutWaiters) { return job }
                if !job.isStopped { return nil }
            }
            let job = FetchJob(wanted: wanted, keepWithoutWaiters: keepWithoutWaiters)
            map[plan.taskID] = job
            let changes = store.changes
            job.start(onEnd: { changes.signal(plan.taskID) }) {
                defer { self.inflight.withLock { if $0[plan.taskID] === job { $0.removeValue(forKey: plan.taskID) } } }
                // The job, not a waiter, marks the task complete: a fetch that goes on after its
                // caller left (a seed's, a preheat) must still end up served to others.
                guard try await !self.missingPieces(plan).isEmpty else { return try await self.markFinishedIfComplete(plan) }
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
                try await self.markFinishedIfComplete(plan)
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

    /// The task id, as upstream's dfdaemon chooses it: from `content_for_calculating_task_id`
    /// when given, from a registry blob's digest when asked to, else from the URL and the
    /// fields that make a different task.
    static func taskID(of request: Common_V2_Download) throws(ConfigError) -> String {
        if let content = request.contentForCalculatingTaskId { return TaskID.content(content) }
        if request.enableTaskIdBasedBlobDigest, let id = TaskID.blobDigest(url: request.url) { return id }
        return try TaskID.standard(url: request.url, tag: request.tag, application: request.application,
                                   pieceLength: request.pieceLength, filteredQueryParams: request.filteredQueryParams)
    }

    /// Counts a download that ended well, by where its bytes came from: `local` (this node
    /// held them), `p2p` or `back_to_source`; standard, persistent and persistent cache tasks alike.
    func countDownloadedTask(from source: String) {
        metrics.counter("download_task_total", [("type", source)], help: "Tasks downloaded, by where the bytes came from").increment()
    }

    /// Marks the task complete once every piece is stored; a fetch of a range may leave
    /// the task partial. Every "finished" report to the scheduler comes after it, so a peer
    /// the scheduler counts as holding the task already lists it as finished.
    func markFinishedIfComplete(_ plan: DownloadPlan) async throws {
        let have = (try? await store.metadata(plan.taskID).pieces) ?? [:]
        guard plan.layout.pieces().allSatisfy({ have[$0.number] != nil }) else { return }
        try await markFinished(plan.taskID)
    }

    /// The plan's pieces not stored yet (of its range, if it has one).
    func missingPieces(_ plan: DownloadPlan) async throws -> [PieceLayout.Piece] {
        let have = (try? await store.metadata(plan.taskID).pieces) ?? [:]
        let pieces = plan.layout.pieces(in: plan.range.map { ($0.first, $0.count) })
        return pieces.filter { have[$0.number] == nil }
    }

    func startedResponse(_ m: TaskMetadata, finished: Bool, headers: [String: String] = [:],
                         range: ByteRange? = nil) -> Dfdaemon_V2_DownloadTaskStartedResponse {
        var r = Dfdaemon_V2_DownloadTaskStartedResponse()
        r.contentLength = m.contentLength
        r.responseHeader = headers.isEmpty ? m.responseHeader : headers
        r.isFinished = finished
        let layout = PieceLayout(contentLength: m.contentLength, pieceLength: m.pieceLength)
        r.range = range.map { range in Common_V2_Range.with { $0.start = range.first; $0.length = range.count } }
        r.pieces = layout.pieces(in: range.map { ($0.first, $0.count) }).map { p in
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
    /// The pieces it fetches; nil for all of the task's.
    let wanted: Set<UInt32>?
    private struct State {
        var result: Result<Void, RPCError>?
        var task: Task<Void, Never>?
        var waiters = 1
        var keepWithoutWaiters: Bool
        var cancelled = false
    }
    private let state: Locked<State>

    init(wanted: Set<UInt32>?, keepWithoutWaiters: Bool) {
        self.wanted = wanted
        state = Locked(State(keepWithoutWaiters: keepWithoutWaiters))
    }

    var outcome: Result<Void, RPCError>? { state.withLock { $0.result } }

    /// Stopped for want of waiters, or ended: another fetch of the task may start.
    var isStopped: Bool { state.withLock { $0.cancelled || $0.result != nil } }

    /// Whether this fetch brings every one of `pieces` (nil: all of the task's).
    func covers(_ pieces: Set<UInt32>?) -> Bool {
        guard let wanted else { return true }
        guard let pieces else { return false }
        return pieces.isSubset(of: wanted)
    }

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
