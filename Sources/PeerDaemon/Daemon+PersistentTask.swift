import DragonflyCommon
import Foundation
import GeneratedAPI
import NIOCore
import NIOPosix
import PeerStorage
import RPCCore

/// Persistent tasks: a file whose home is an origin, kept by the cluster in
/// `persistent_replica_count` copies until its TTL. Upstream's origin is object storage;
/// ours is an HTTP(S) URL: `UploadPersistentTask` PUTs the file there while storing it,
/// and a download no peer can serve goes back to that URL.
extension Daemon {
    /// The origin of a persistent task, checked: HTTP(S) only, no object storage, and the
    /// address policy every fetch follows.
    func persistentTaskOrigin(_ url: String, objectStorage: Common_V2_ObjectStorage?) async throws -> String {
        guard objectStorage == nil else {
            throw RPCError(code: .invalidArgument, message: "object storage backends are not served; persistent tasks take http(s) URLs")
        }
        guard let scheme = URLComponents(string: url)?.scheme?.lowercased(), ["http", "https"].contains(scheme), url.utf8.count <= 8192 else {
            throw RPCError(code: .invalidArgument, message: "a persistent task's url must be http(s), not \(LogRedaction.url(url))")
        }
        if let refusal = await config.originPolicy.refusal(for: url) {
            throw RPCError(code: .permissionDenied, message: refusal)
        }
        return url
    }

    // MARK: - Upload

    /// `UploadPersistentTask`: stores the file piece by piece and PUTs it to its URL at the
    /// same time; the scheduler then has other hosts fetch replicas from here.
    func uploadPersistentTask(_ r: Dfdaemon_V2_UploadPersistentTaskRequest) async throws -> Common_V2_PersistentTask {
        let url = try await persistentTaskOrigin(r.url, objectStorage: r.objectStorage)
        guard r.persistentReplicaCount >= 1, r.persistentReplicaCount <= 1_000 else {
            throw RPCError(code: .invalidArgument, message: "persistent_replica_count must be 1 to 1000")
        }
        let ttl = r.ttl == nil ? Self.defaultPersistentCacheTTL : try Self.checkedTTL(r.ttl)
        let source = try ImportSource.open(r.path, allowed: config.allowedOutputDirs)
        defer { source.close() }
        let layout: PieceLayout
        do {
            layout = try PieceLayout.checked(contentLength: source.length, requestedPieceLength: nil)
        } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
        // As upstream: an object already at the URL is not overwritten.
        if (try? await origin.head(url, headers: [:])) != nil {
            throw RPCError(code: .alreadyExists, message: "\(LogRedaction.url(url)) exists already")
        }
        let taskID = TaskID.persistent(url: url)
        let scheduler = try keptScheduler(for: taskID)
        let peerID = PeerIdentity.peerID(ip: config.ip, hostname: config.hostname, seed: config.seedPeer)
        _ = try await scheduler.uploadPersistentTaskStarted(Scheduler_V2_UploadPersistentTaskStartedRequest.with {
            $0.hostId = hostID
            $0.taskId = taskID
            $0.peerId = peerID
            $0.url = url
            $0.persistentReplicaCount = r.persistentReplicaCount
            $0.contentLength = layout.contentLength
            $0.pieceCount = layout.pieceCount
            $0.ttl = Google_Protobuf_Duration(ttl)
        }, options: CallOptions(timeout: .seconds(10)))
        do {
            let info = PersistentCacheInfo(persistent: true, createdAt: Date(), ttlSeconds: ttl.components.seconds,
                                           replicaCount: r.persistentReplicaCount, tag: nil, application: nil, sourceURL: url)
            try? await store.delete(taskID: taskID)
            _ = try await store.open(taskID: taskID, url: url, contentLength: layout.contentLength, pieceLength: layout.pieceLength,
                                     persistentCache: info)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.origin.put(url, length: layout.contentLength, body: Self.chunks(of: source)) }
                group.addTask {
                    for piece in layout.pieces() {
                        let bytes = try await NIOThreadPool.singleton.runIfActive { try source.read(offset: piece.offset, length: piece.length) }
                        try await self.store.writePiece(taskID: taskID, number: piece.number, bytes: bytes)
                    }
                }
                try await group.waitForAll()
            }
            try await store.finish(taskID: taskID)
            let task = try await scheduler.uploadPersistentTaskFinished(Scheduler_V2_UploadPersistentTaskFinishedRequest.with {
                $0.hostId = hostID
                $0.taskId = taskID
                $0.peerId = peerID
            }, options: CallOptions(timeout: .seconds(10)))
            if let created = task.createdAt { try? await store.updatePersistentCache(taskID: taskID) { $0.createdAt = created.date } }
            logger.info("persistent task \(taskID) uploaded from \(r.path) to \(LogRedaction.url(url)): \(layout.contentLength) bytes")
            return task
        } catch {
            try? await store.delete(taskID: taskID)
            _ = try? await scheduler.uploadPersistentTaskFailed(Scheduler_V2_UploadPersistentTaskFailedRequest.with {
                $0.hostId = hostID
                $0.taskId = taskID
                $0.peerId = peerID
                $0.descriptionField = "\(error)"
            }, options: CallOptions(timeout: .seconds(5)))
            if let error = error as? RPCError { throw error }
            throw RPCError(code: .internal, message: "uploading \(r.path) to \(LogRedaction.url(url)): \(error)")
        }
    }

    /// The file in 1 MiB chunks, read on the thread pool as the PUT takes them.
    static func chunks(of source: ImportSource) -> AsyncThrowingStream<ByteBuffer, any Error> {
        let total = source.length
        let offset = OffsetBox()
        return AsyncThrowingStream {
            let at = offset.take(upTo: total, by: 1 << 20)
            guard at.length > 0 else { return nil }
            let bytes = try await NIOThreadPool.singleton.runIfActive { try source.read(offset: at.offset, length: at.length) }
            return ByteBuffer(bytes: bytes)
        }
    }

    // MARK: - Download

    /// `DownloadPersistentTask`: from this node's copy, the peers the scheduler names, or
    /// (for a local caller, when no peer can serve it or the scheduler does not know it)
    /// the URL itself. A replication the scheduler asks for never goes to the URL.
    func downloadPersistentTask(_ r: Dfdaemon_V2_DownloadPersistentTaskRequest, caller: DownloadCaller,
                                started: @Sendable (UInt64, String) async throws -> Void, piece report: @escaping PieceReport) async throws {
        let url = try await persistentTaskOrigin(r.url, objectStorage: r.objectStorage)
        let output = try keptOutput(r.outputPath, caller: caller)
        let contentDigest = try keptDigest(r.digest)
        let taskID = TaskID.persistent(url: url)
        let originAllowed = caller != .cluster
        var scheduler: Scheduler_V2_SchedulerClient?
        if let address = self.scheduler(for: taskID) {
            scheduler = Scheduler_V2_SchedulerClient(RPCClient(transport: try channel(address)))
        }
        var known: Common_V2_PersistentTask?
        do {
            known = try await scheduler?.statPersistentTask(Scheduler_V2_StatPersistentTaskRequest.with {
                $0.hostId = hostID
                $0.taskId = taskID
            }, options: CallOptions(timeout: .seconds(10)))
        } catch where originAllowed {
            // Not kept (or no scheduler to ask): the origin has it.
            known = nil
        }
        guard known != nil || originAllowed else {
            throw RPCError(code: .notFound, message: "persistent task \(taskID) is not known to the scheduler")
        }
        // The length is the origin's, as upstream stats its object; a copy of another
        // version is not mixed with it.
        let info: OriginInfo
        if originAllowed || known == nil {
            do { info = try await origin.head(url, headers: [:]) } catch let error as OriginError {
                throw error.refused ? RPCError(code: .permissionDenied, message: error.message) : backendError(error)
            }
        } else {
            info = OriginInfo(contentLength: known?.contentLength ?? 0, headers: [:])
        }
        let layout: PieceLayout
        do {
            layout = try PieceLayout.checked(contentLength: info.contentLength, requestedPieceLength: nil)
        } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
        if let known, known.contentLength != layout.contentLength {
            throw RPCError(code: .failedPrecondition, message: "\(LogRedaction.url(url)) is \(layout.contentLength) bytes, the kept task \(known.contentLength)")
        }
        let ttl = known.flatMap { try? Self.checkedTTL($0.ttl) }
        let kept = PersistentCacheInfo(persistent: r.persistent, createdAt: known?.createdAt?.date ?? Date(),
                                       ttlSeconds: (ttl ?? Self.defaultPersistentCacheTTL).components.seconds,
                                       replicaCount: known?.persistentReplicaCount ?? 1, tag: nil, application: nil, sourceURL: url)
        let validators = OriginValidators(headers: info.headers, contentLength: info.contentLength)
        // Peers are asked only about a task the scheduler keeps.
        let peers = known == nil ? nil : scheduler
        try await runKeptDownload(taskID, layout: layout, info: kept, output: output, contentDigest: contentDigest,
                                  started: started, report: report) { plan in
            var plan = plan
            plan.kind = .persistentTask
            plan.validators = validators
            if let peers {
                do {
                    try await self.fetchPersistentTask(plan, scheduler: peers, persistent: r.persistent, originAllowed: originAllowed)
                    return
                } catch {
                    guard originAllowed else { throw error }
                    plan.log.warning("persistent task \(taskID): peers failed (\(error)); fetching the rest from \(LogRedaction.url(url))")
                }
            }
            try await self.fetchFromOrigin(plan, pieces: self.missingPieces(plan), report: { _ in }, onPiece: nil)
        }
    }

    /// Follows AnnouncePersistentPeer: parents while any can serve, else the origin.
    private func fetchPersistentTask(_ plan: DownloadPlan, scheduler: Scheduler_V2_SchedulerClient, persistent: Bool,
                                     originAllowed: Bool) async throws {
        let call = try await scheduler.announcePersistentPeer(options: CallOptions(timeout: .seconds(3600)))
        defer { call.cancel() }
        let hostID = self.hostID
        @Sendable func send(_ request: Scheduler_V2_AnnouncePersistentPeerRequest.RequestOneof) async throws {
            try await call.send(Scheduler_V2_AnnouncePersistentPeerRequest.with {
                $0.hostId = hostID
                $0.taskId = plan.taskID
                $0.peerId = plan.peerID
                $0.request = request
            })
        }
        try await send(.registerPersistentPeerRequest(Scheduler_V2_RegisterPersistentPeerRequest.with {
            $0.url = plan.download.url
            $0.persistent = persistent
            $0.pieceCount = UInt64(plan.layout.pieceCount)
            $0.concurrentPieceCount = UInt32(clamping: config.concurrentPieceCount)
        }))
        var schedules = 0
        for try await response in call.responses {
            switch response.response {
            case .emptyPersistentTaskResponse?, nil:
                try await send(.downloadPersistentPeerStartedRequest(Scheduler_V2_DownloadPersistentPeerStartedRequest()))
                try await send(.downloadPersistentPeerFinishedRequest(Scheduler_V2_DownloadPersistentPeerFinishedRequest()))
                try await call.finishSending()
                return
            case .needBackToSourceResponse?:
                guard originAllowed else {
                    try? await send(.downloadPersistentPeerBackToSourceFailedRequest(Scheduler_V2_DownloadPersistentPeerBackToSourceFailedRequest.with {
                        $0.descriptionField = "a replication does not download from the origin"
                    }))
                    throw RPCError(code: .unavailable, message: "no peer holds persistent task \(plan.taskID), and a replication does not go to the origin")
                }
                try await send(.downloadPersistentPeerBackToSourceStartedRequest(Scheduler_V2_DownloadPersistentPeerBackToSourceStartedRequest()))
                do {
                    try await fetchFromOrigin(plan, pieces: missingPieces(plan), report: { _ in }) { piece in
                        try? await send(.downloadPieceBackToSourceFinishedRequest(Scheduler_V2_DownloadPieceBackToSourceFinishedRequest.with { $0.piece = piece }))
                    }
                } catch {
                    try? await send(.downloadPersistentPeerBackToSourceFailedRequest(Scheduler_V2_DownloadPersistentPeerBackToSourceFailedRequest.with {
                        $0.descriptionField = "\(error)"
                    }))
                    throw error
                }
                try await markFinishedIfComplete(plan)
                try await send(.downloadPersistentPeerBackToSourceFinishedRequest(Scheduler_V2_DownloadPersistentPeerBackToSourceFinishedRequest()))
                try await call.finishSending()
                return
            case .normalPersistentTaskResponse(let normal)?:
                if schedules == 0 {
                    try await send(.downloadPersistentPeerStartedRequest(Scheduler_V2_DownloadPersistentPeerStartedRequest()))
                }
                schedules += 1
                let parents = normal.candidateParents.prefix(Self.maxParentsPerRound).map { p in Common_V2_Peer.with { $0.id = p.id; $0.host = p.host } }
                let failed = try await fetchFromParents(plan, parents: Array(parents), report: { _ in }, onPiece: { piece in
                    try? await send(.downloadPieceFinishedRequest(Scheduler_V2_DownloadPieceFinishedRequest.with { $0.piece = piece }))
                }, onParentFailed: { parentID, number in
                    try? await send(.downloadPieceFailedRequest(Scheduler_V2_DownloadPieceFailedRequest.with {
                        $0.pieceNumber = number
                        $0.parentId = parentID
                        $0.temporary = true
                    }))
                })
                if try await missingPieces(plan).isEmpty {
                    try await markFinishedIfComplete(plan)
                    try await send(.downloadPersistentPeerFinishedRequest(Scheduler_V2_DownloadPersistentPeerFinishedRequest()))
                    try await call.finishSending()
                    return
                }
                guard schedules < Self.maxPersistentCacheSchedules else {
                    let why = "pieces still missing after \(schedules) schedules"
                    try? await send(.downloadPersistentPeerFailedRequest(Scheduler_V2_DownloadPersistentPeerFailedRequest.with { $0.descriptionField = why }))
                    throw RPCError(code: .unavailable, message: why)
                }
                try await send(.reschedulePersistentPeerRequest(Scheduler_V2_ReschedulePersistentPeerRequest.with {
                    $0.candidateParents = normal.candidateParents.filter { failed.contains($0.id) }
                    $0.descriptionField = "pieces missing"
                }))
            }
        }
        throw RPCError(code: .unavailable, message: "the scheduler ended the stream before the download finished")
    }

    // MARK: - Views and removal

    func statLocalPersistentTask(_ taskID: String) async throws -> Dfdaemon_V2_StatLocalPersistentTaskResponse {
        guard let view: Dfdaemon_V2_StatLocalPersistentTaskResponse = await localKeptTask(taskID, kind: .persistentTask) else {
            throw RPCError(code: .notFound, message: "local persistent task not found: \(taskID)")
        }
        return view
    }

    func localPersistentTasks() async -> [Dfdaemon_V2_StatLocalPersistentTaskResponse] {
        await localKeptTasks(kind: .persistentTask)
    }

    func statPersistentTask(_ taskID: String) async throws -> Common_V2_PersistentTask {
        try await keptScheduler(for: taskID).statPersistentTask(Scheduler_V2_StatPersistentTaskRequest.with {
            $0.hostId = hostID
            $0.taskId = taskID
        }, options: CallOptions(timeout: .seconds(10)))
    }

    /// A cluster-wide delete of a persistent task asked by a local client: the scheduler
    /// forgets it and tells every host; the origin keeps its copy.
    func deletePersistentTaskEverywhere(_ taskID: String) async throws {
        _ = try await keptScheduler(for: taskID).deletePersistentTask(Scheduler_V2_DeletePersistentTaskRequest.with {
            $0.hostId = hostID
            $0.taskId = taskID
        }, options: clusterCallOptions(timeout: .seconds(30)))
        try? await store.delete(taskID: taskID)
    }
}

import Locking

/// The next chunk of a file being streamed: its offset and length.
final class OffsetBox: Sendable {
    private let next = Locked<UInt64>(0)
    func take(upTo total: UInt64, by size: UInt64) -> (offset: UInt64, length: UInt64) {
        next.withLock { n in
            let at = n
            let length = min(size, total - min(total, at))
            n = at + length
            return (at, length)
        }
    }
}
