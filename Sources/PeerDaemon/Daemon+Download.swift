import DragonflyCommon
import Foundation
import GeneratedAPI
import Logging
import PeerStorage
import RPCCore
import Synchronization

/// What a download needs to know once the task's size is known.
struct DownloadPlan: Sendable {
    let taskID: String
    let peerID: String
    let download: Common_V2_Download
    let layout: PieceLayout
    let headers: [String: String]
    /// The daemon's logger with the task and peer ids, for every line about this download.
    let log: Logger
}

extension Daemon {
    /// Downloads a task and reports progress: first `started` (length and piece list),
    /// then each piece as it lands. Writes `output_path` when the request names one.
    public func download(_ request: Common_V2_Download,
                         started: @Sendable (Dfdaemon_V2_DownloadTaskStartedResponse, String, String) async throws -> Void,
                         piece report: @escaping PieceReport) async throws {
        if let refusal = config.allowedOrigins.refusal(for: request.url) {
            throw RPCError(code: .permissionDenied, message: refusal)
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

        // A complete local copy is served at once, after re-checking every piece: an output
        // hard-linked to the store could have been edited since.
        if let m = try? await store.metadata(taskID), m.finished, await verifiesIntact(m) {
            try await started(startedResponse(m, finished: true), taskID, peerID)
            for p in m.pieces.values.sorted(by: { $0.number < $1.number }) {
                try await report(Common_V2_Piece(p, traffic: .localPeer))
            }
            metrics.counter("download_task_total", [("type", "local")], help: "Tasks downloaded, by where the bytes came from").increment()
            try await writeOutput(request, taskID: taskID)
            return
        }

        let info: OriginInfo
        do {
            info = try await origin.head(request.url, headers: request.requestHeader)
        } catch let error as OriginError {
            throw backendError(error)
        }
        let layout = PieceLayout(contentLength: info.contentLength, pieceLength: request.pieceLength ?? config.pieceLength)
        let meta: TaskMetadata
        do {
            meta = try await store.open(taskID: taskID, url: request.url, contentLength: layout.contentLength, pieceLength: layout.pieceLength)
        } catch {
            throw RPCError(code: .internal, message: "\(error)")
        }
        try await started(startedResponse(meta, finished: false, headers: info.headers), taskID, peerID)
        for p in meta.pieces.values.sorted(by: { $0.number < $1.number }) {
            try await report(Common_V2_Piece(p, traffic: .localPeer))
        }
        var log = logger
        log[metadataKey: "task_id"] = "\(taskID)"
        log[metadataKey: "peer_id"] = "\(peerID)"
        log.info("download started", metadata: ["url": "\(LogRedaction.url(request.url))",
                                                "content_length": "\(layout.contentLength)", "pieces_stored": "\(meta.pieces.count)"])
        let began = ContinuousClock.now
        let plan = DownloadPlan(taskID: taskID, peerID: peerID, download: request, layout: layout,
                                headers: request.requestHeader, log: log)
        let job = sharedFetch(plan)
        // Every requester follows the store: pieces are reported as they land, whoever
        // fetched them, so concurrent requests for one task share one download.
        var reported = Set(meta.pieces.keys)
        var fromOrigin = false
        while true {
            let outcome = job.outcome
            if let m = try? await store.metadata(taskID) {
                for p in m.pieces.values.sorted(by: { $0.number < $1.number }) where !reported.contains(p.number) {
                    reported.insert(p.number)
                    if p.parentID == nil { fromOrigin = true }
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
            try await Task.sleep(for: .milliseconds(20))
        }
        if let failure = await finishStored(taskID, contentDigest) {
            log.error("download failed: \(failure)")
            throw RPCError(code: .internal, message: failure)
        }
        log.info("download finished", metadata: ["source": "\(fromOrigin ? "back_to_source" : "peers")",
                                                 "cost": "\(ContinuousClock.now - began)"])
        metrics.counter("download_task_total", [("type", fromOrigin ? "back_to_source" : "p2p")],
                        help: "Tasks downloaded, by where the bytes came from").increment()
        try await writeOutput(request, taskID: taskID)
    }

    /// True when every stored piece still matches its digest; otherwise the task is
    /// dropped so it is fetched again.
    func verifiesIntact(_ m: TaskMetadata) async -> Bool {
        for n in m.pieces.keys.sorted() {
            if (try? await store.readPiece(taskID: m.taskID, number: n)) == nil {
                logger.warning("task \(m.taskID): stored piece \(n) is corrupt; fetching the task again")
                try? await store.delete(taskID: m.taskID)
                return false
            }
        }
        return true
    }

    /// The fetch of a task's missing pieces, started once however many ask for the task.
    func sharedFetch(_ plan: DownloadPlan) -> FetchJob {
        inflight.withLock { map in
            if let job = map[plan.taskID] { return job }
            let job = FetchJob()
            map[plan.taskID] = job
            job.start {
                defer { _ = self.inflight.withLock { $0.removeValue(forKey: plan.taskID) } }
                guard try await !self.missingPieces(plan).isEmpty else { return }
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
                        // A pull never fails because Dragonfly did: what is missing comes from the origin.
                        plan.log.warning("P2P failed (\(error)); fetching the rest from the origin")
                    }
                }
                try await self.fetchFromOrigin(plan, pieces: self.missingPieces(plan), report: { _ in }, onPiece: nil)
            }
            return job
        }
    }

    /// Marks the task complete; a content digest mismatch drops the task so no one is
    /// served it. Returns the failure, if any.
    func finishStored(_ taskID: String, _ digest: ContentDigest?) async -> String? {
        let result: Result<Void, StorageError>
        do {
            try await store.finish(taskID: taskID, contentDigest: digest)
            result = .success(())
        } catch {
            result = .failure(error)
        }
        guard case .failure(let error) = result else { return nil }
        if error.isDigestMismatch { try? await store.delete(taskID: taskID) }
        return error.description
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

    /// Puts the finished content at `output_path` through a temporary name and a rename, so
    /// a reader never sees half a file: a hard link when the store shares the file system
    /// (as the Rust client does; the store re-verifies digests, so later edits to the output
    /// are caught before anything is served), otherwise a copy.
    func writeOutput(_ request: Common_V2_Download, taskID: String) async throws {
        guard let output = request.outputPath, !output.isEmpty else { return }
        let source = store.directory.appendingPathComponent("content/\(taskID)").path
        let temporary = output + ".dfget-\(UUID().uuidString.prefix(8))"
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: (output as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if link(source, temporary) != 0 {
                try fm.copyItem(atPath: source, toPath: temporary)
            }
            if rename(temporary, output) != 0 { throw RPCError(code: .internal, message: "cannot move into \(output)") }
        } catch {
            try? fm.removeItem(atPath: temporary)
            throw RPCError(code: .internal, message: "cannot write \(output): \(error)")
        }
    }
}

/// One running fetch and, once it ends, how it ended.
final class FetchJob: Sendable {
    private let result = Mutex<Result<Void, RPCError>?>(nil)

    var outcome: Result<Void, RPCError>? { result.withLock { $0 } }

    func start(_ body: @escaping @Sendable () async throws -> Void) {
        Task {
            do {
                try await body()
                result.withLock { $0 = .success(()) }
            } catch {
                result.withLock { $0 = .failure(RPCError.wrapping(error)) }
            }
        }
    }
}
