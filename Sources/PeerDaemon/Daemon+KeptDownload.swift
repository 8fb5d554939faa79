import DragonflyCommon
import Foundation
import GeneratedAPI
import NIOPosix
import PeerStorage
import RPCCore
import VortexProtocol

/// What the two kinds of task the cluster keeps (persistent cache tasks, persistent tasks)
/// share once their layout is known: the store's copy, pieces reported as they land, the
/// output and the digest.
extension Daemon {
    /// Where a local caller wants the file; only a local caller may name one.
    func keptOutput(_ path: String?, caller: DownloadCaller) throws -> OutputTarget? {
        guard let path, !path.isEmpty else { return nil }
        guard caller == .local else {
            throw RPCError(code: .permissionDenied, message: "only a local client may name an output path")
        }
        let target = try OutputTarget.check(path, allowed: config.allowedOutputDirs)
        try target.preflight()
        return target
    }

    /// The scheduler that keeps `taskID` (rendezvous over the cluster's schedulers).
    func keptScheduler(for taskID: String) throws -> Scheduler_V2_SchedulerClient {
        guard let address = scheduler(for: taskID) else {
            throw RPCError(code: .unavailable, message: "no scheduler: the cluster's scheduler keeps this task")
        }
        return Scheduler_V2_SchedulerClient(RPCClient(transport: try channel(address)))
    }

    /// Options for a call only the cluster's own callers may make (a delete): this node
    /// presents its client certificate through the channel, and the cluster's secret here.
    func clusterCallOptions(timeout: Duration) -> CallOptions {
        var options = CallOptions(timeout: timeout)
        if let secret = config.managerRegistrationSecret ?? ProcessInfo.processInfo.environment["DRAGONFLY_REGISTRATION_SECRET"] {
            options.metadata.add(Self.registrationSecretKey, secret)
        }
        return options
    }

    func keptDigest(_ text: String?) throws -> ContentDigest? {
        do { return try text.map { try ContentDigest(parsing: $0) } } catch {
            throw RPCError(code: .invalidArgument, message: "invalid digest(\(text ?? "")): \(error)")
        }
    }

    /// Serves what the store holds of the task, runs `fetch` for the rest (its plan's pieces
    /// are whatever is missing) while reporting pieces as they land, then checks the digest
    /// and puts the output in place. A stored copy of another kind or layout is dropped.
    func runKeptDownload(_ taskID: String, layout: PieceLayout, info: PersistentCacheInfo, output: OutputTarget?,
                         contentDigest: ContentDigest?, started: @Sendable (UInt64, String) async throws -> Void,
                         report: @escaping PieceReport, fetch: @escaping @Sendable (DownloadPlan) async throws -> Void) async throws {
        let peerID = PeerIdentity.peerID(ip: config.ip, hostname: config.hostname, seed: config.seedPeer)
        var meta: TaskMetadata
        do {
            if let m = try? await store.metadata(taskID), let kept = m.persistentCache, kept.sourceURL == info.sourceURL,
               m.contentLength == layout.contentLength, m.pieceLength == layout.pieceLength {
                meta = m
                if info.persistent { try await store.updatePersistentCache(taskID: taskID) { $0.persistent = true } }
            } else {
                try? await store.delete(taskID: taskID)
                meta = try await store.open(taskID: taskID, url: info.sourceURL ?? "", contentLength: layout.contentLength,
                                            pieceLength: layout.pieceLength, persistentCache: info)
            }
        } catch {
            throw RPCError(code: .internal, message: "\(error)")
        }
        let file: OutputFile?
        if let output {
            // Written as pieces arrive, from the bytes received (`ContentMirror`).
            file = try await NIOThreadPool.singleton.runIfActive { try OutputFile(output, length: layout.contentLength, mirrored: true) }
        } else {
            file = nil
        }
        let mirror = file?.mirror
        if let mirror { store.attach(mirror, to: taskID) }
        defer { if let mirror { store.detach(mirror, from: taskID) } }
        try await started(layout.contentLength, peerID)
        var reported = Set<UInt32>()
        try await deliver(meta, &reported, traffic: .localPeer, file: file, report: report)
        if !meta.finished {
            let plan = DownloadPlan(taskID: taskID, peerID: peerID, download: Common_V2_Download.with { $0.url = info.sourceURL ?? "" },
                                    layout: layout, headers: [:], log: logger,
                                    limit: TokenBucket(bytesPerSecond: config.perTaskDownloadRateLimit))
            let outcome = PersistentFetchOutcome()
            persistentFetches.withLock { $0[taskID, default: 0] += 1 }
            let job = Task {
                defer {
                    persistentFetches.withLock { f in
                        if let n = f[taskID], n > 1 { f[taskID] = n - 1 } else { f[taskID] = nil }
                    }
                }
                do {
                    try await fetch(plan)
                    try await self.store.finish(taskID: taskID)
                    outcome.set(.success(()))
                } catch {
                    outcome.set(.failure(RPCError.wrapping(error)))
                }
                self.store.changes.signal(taskID)
            }
            defer { job.cancel() }
            // Pieces go to the caller as they land, whoever's workers stored them.
            while true {
                let seen = store.changes.version(taskID)
                try await deliver(store.metadata(taskID), &reported, traffic: nil, file: file, report: report)
                if let result = outcome.value {
                    try result.get()
                    try await deliver(store.metadata(taskID), &reported, traffic: nil, file: file, report: report)
                    break
                }
                await store.changes.wait(taskID, after: seen, timeout: .seconds(5))
                try Task.checkCancellation()
            }
        }
        if let contentDigest {
            do { try await store.verify(taskID: taskID, contentDigest: contentDigest) } catch {
                throw RPCError(code: .internal, message: "\(error)")
            }
        }
        if let mirror { store.detach(mirror, from: taskID) }
        if let file { try await NIOThreadPool.singleton.runIfActive { try file.commit() } }
        let fromOrigin = try await store.metadata(taskID).pieces.values.contains { $0.parentID == nil }
        countDownloadedTask(from: meta.finished ? "local" : fromOrigin ? "back_to_source" : "p2p")
    }

    /// Reports the stored pieces not reported yet, copying each into the output first.
    /// `traffic` nil: from a parent, or from the origin for a piece with no parent.
    private func deliver(_ m: TaskMetadata, _ reported: inout Set<UInt32>, traffic: Common_V2_TrafficType?,
                         file: OutputFile?, report: PieceReport) async throws {
        for p in m.pieces.values.sorted(by: { $0.number < $1.number }) where !reported.contains(p.number) {
            reported.insert(p.number)
            if let file { try await copyPiece(p, of: m.taskID, into: file, range: nil) }
            try await report(Common_V2_Piece(p, traffic: traffic ?? (p.parentID == nil ? .backToSource : .remotePeer)))
        }
    }

    /// This node's copy of a kept task of `kind`, as `StatLocalPersistent*Task` answers.
    func localKeptTask<View: LocalKeptTaskView>(_ taskID: String, kind: VortexPieceKind) async -> View? {
        guard let m = try? await store.metadata(taskID), let kept = m.persistentCache,
              (kept.sourceURL == nil ? VortexPieceKind.persistentCacheTask : .persistentTask) == kind else { return nil }
        let (uploading, uploaded) = uploadCounts.of(taskID)
        var r = View()
        r.taskId = taskID
        r.persistent = kept.persistent
        r.ttl = Google_Protobuf_Duration(Duration.seconds(kept.ttlSeconds))
        r.pieceLength = m.pieceLength
        r.contentLength = m.contentLength
        r.uploadingCount = uploading
        r.uploadedCount = uploaded
        r.createdAt = Self.timestamp(kept.createdAt)
        r.updatedAt = Self.timestamp(m.accessedAt)
        r.finishedAt = m.finished ? Self.timestamp(m.finishedAt ?? m.accessedAt) : nil
        return r
    }

    func localKeptTasks<View: LocalKeptTaskView>(kind: VortexPieceKind) async -> [View] {
        var tasks: [View] = []
        for id in store.taskIDs().sorted() {
            if let t: View = await localKeptTask(id, kind: kind) { tasks.append(t) }
        }
        return tasks
    }
}

/// The two local views of a kept task (persistent and persistent cache), which have the
/// same fields.
protocol LocalKeptTaskView {
    init()
    var taskId: String { get set }
    var persistent: Bool { get set }
    var ttl: Google_Protobuf_Duration? { get set }
    var pieceLength: UInt64? { get set }
    var contentLength: UInt64? { get set }
    var uploadingCount: UInt64 { get set }
    var uploadedCount: UInt64 { get set }
    var createdAt: Google_Protobuf_Timestamp? { get set }
    var updatedAt: Google_Protobuf_Timestamp? { get set }
    var finishedAt: Google_Protobuf_Timestamp? { get set }
}

extension Dfdaemon_V2_StatLocalPersistentTaskResponse: LocalKeptTaskView {}
extension Dfdaemon_V2_StatLocalPersistentCacheTaskResponse: LocalKeptTaskView {}
