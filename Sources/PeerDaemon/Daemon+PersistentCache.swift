import DragonflyCommon
import Foundation
import GeneratedAPI
import NIOPosix
import PeerStorage
import RPCCore
import VortexProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Persistent cache tasks (`dfcache`): a file imported from this node's disk becomes a
/// task the cluster keeps in `persistent_replica_count` copies until its TTL. There is no
/// origin: every copy comes from a peer that holds one, over the same piece transfer as any
/// task.
extension Daemon {
    /// What the cluster keeps a task for when the importer does not say (upstream's
    /// `gc.policy.persistentCacheTaskTTL`).
    static let defaultPersistentCacheTTL: Duration = .seconds(24 * 3600)
    /// How many times a download asks the scheduler for other parents before it fails.
    static let maxPersistentCacheSchedules = 5
    /// The metadata key the cluster's secret travels in (as the scheduler's preheat takes it).
    static let registrationSecretKey = "x-dragonfly-registration-secret"

    // MARK: - Import

    /// `UploadPersistentCacheTask`: copies the file into the store piece by piece, and
    /// tells the scheduler, which has other hosts fetch replicas from here.
    func importPersistentCacheTask(_ r: Dfdaemon_V2_UploadPersistentCacheTaskRequest) async throws -> Common_V2_PersistentCacheTask {
        guard r.persistentReplicaCount >= 1, r.persistentReplicaCount <= 1_000 else {
            throw RPCError(code: .invalidArgument, message: "persistent_replica_count must be 1 to 1000")
        }
        let ttl = r.ttl == nil ? Self.defaultPersistentCacheTTL : try Self.checkedTTL(r.ttl)
        let source = try ImportSource.open(r.path, allowed: config.allowedOutputDirs)
        defer { source.close() }
        let layout: PieceLayout
        do {
            layout = try PieceLayout.checked(contentLength: source.length, requestedPieceLength: r.pieceLength)
        } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
        let taskID: String
        if let content = r.contentForCalculatingTaskId {
            taskID = Hashing.sha256Hex(Array(content.utf8))
        } else {
            taskID = try await NIOThreadPool.singleton.runIfActive {
                try source.persistentCacheTaskID(tag: r.tag, application: r.application, pieceLength: r.pieceLength)
            }
        }
        let scheduler = try keptScheduler(for: taskID)
        let peerID = PeerIdentity.peerID(ip: config.ip, hostname: config.hostname, seed: config.seedPeer)
        _ = try await scheduler.uploadPersistentCacheTaskStarted(Scheduler_V2_UploadPersistentCacheTaskStartedRequest.with {
            $0.hostId = hostID
            $0.taskId = taskID
            $0.peerId = peerID
            $0.persistentReplicaCount = r.persistentReplicaCount
            $0.tag = r.tag
            $0.application = r.application
            $0.pieceLength = layout.pieceLength
            $0.contentLength = layout.contentLength
            $0.pieceCount = layout.pieceCount
            $0.ttl = Google_Protobuf_Duration(ttl)
        }, options: CallOptions(timeout: .seconds(10)))
        do {
            let info = PersistentCacheInfo(persistent: true, createdAt: Date(), ttlSeconds: ttl.components.seconds,
                                           replicaCount: r.persistentReplicaCount, tag: r.tag, application: r.application)
            try? await store.delete(taskID: taskID)
            _ = try await store.open(taskID: taskID, url: "", contentLength: layout.contentLength, pieceLength: layout.pieceLength,
                                     persistentCache: info)
            for piece in layout.pieces() {
                let bytes = try await NIOThreadPool.singleton.runIfActive { try source.read(offset: piece.offset, length: piece.length) }
                try await store.writePiece(taskID: taskID, number: piece.number, bytes: bytes)
            }
            try await store.finish(taskID: taskID)
            var task = try await scheduler.uploadPersistentCacheTaskFinished(Scheduler_V2_UploadPersistentCacheTaskFinishedRequest.with {
                $0.hostId = hostID
                $0.taskId = taskID
                $0.peerId = peerID
            }, options: CallOptions(timeout: .seconds(10)))
            // The TTL runs from the scheduler's clock on every node alike.
            if let created = task.createdAt { try? await store.updatePersistentCache(taskID: taskID) { $0.createdAt = created.date } }
            task.tag = r.tag
            task.application = r.application
            logger.info("persistent cache task \(taskID) imported from \(r.path): \(layout.contentLength) bytes, \(layout.pieceCount) pieces")
            return task
        } catch {
            try? await store.delete(taskID: taskID)
            _ = try? await scheduler.uploadPersistentCacheTaskFailed(Scheduler_V2_UploadPersistentCacheTaskFailedRequest.with {
                $0.hostId = hostID
                $0.taskId = taskID
                $0.peerId = peerID
                $0.descriptionField = "\(error)"
            }, options: CallOptions(timeout: .seconds(5)))
            if let error = error as? RPCError { throw error }
            throw RPCError(code: .internal, message: "importing \(r.path): \(error)")
        }
    }

    static func checkedTTL(_ value: Google_Protobuf_Duration?) throws(RPCError) -> Duration {
        guard let value, value.nanos >= 0, value.nanos < 1_000_000_000, value.seconds >= 1, value.seconds <= 7 * 86_400 else {
            throw RPCError(code: .invalidArgument, message: "ttl must be between one second and 7 days")
        }
        return .seconds(value.seconds)
    }

    // MARK: - Download (export, replication)

    /// `DownloadPersistentCacheTask`: the task from this node's store if it is complete
    /// here, else from the peers the scheduler names. `started` gets the content length.
    func downloadPersistentCacheTask(_ r: Dfdaemon_V2_DownloadPersistentCacheTaskRequest, caller: DownloadCaller,
                                     started: @Sendable (UInt64, String) async throws -> Void,
                                     piece report: @escaping PieceReport) async throws {
        let taskID = r.taskId
        guard TaskID.isWellFormed(taskID) else {
            throw RPCError(code: .invalidArgument, message: "task_id must be lowercase hex")
        }
        let output = try keptOutput(r.outputPath, caller: caller)
        let contentDigest = try keptDigest(r.digest)
        let scheduler = try keptScheduler(for: taskID)
        // The scheduler is asked first, as upstream does: a task it no longer knows (deleted,
        // past its TTL) is not handed out from a copy that is about to go.
        let task = try await scheduler.statPersistentCacheTask(Scheduler_V2_StatPersistentCacheTaskRequest.with {
            $0.hostId = hostID
            $0.taskId = taskID
        }, options: CallOptions(timeout: .seconds(10)))
        let layout: PieceLayout
        do {
            layout = try PieceLayout.checked(contentLength: task.contentLength, requestedPieceLength: task.pieceLength)
        } catch {
            throw RPCError(code: .dataLoss, message: "the scheduler's layout of \(taskID) is impossible: \(error.description)")
        }
        let ttl = try Self.checkedTTL(task.ttl)
        let info = PersistentCacheInfo(persistent: r.persistent, createdAt: task.createdAt?.date ?? Date(), ttlSeconds: ttl.components.seconds,
                                       replicaCount: task.persistentReplicaCount, tag: task.tag, application: task.application)
        try await runKeptDownload(taskID, layout: layout, info: info, output: output, contentDigest: contentDigest,
                                  started: started, report: report) { plan in
            var plan = plan
            plan.kind = .persistentCacheTask
            try await self.fetchPersistentCacheFromPeers(plan, scheduler: scheduler, persistent: r.persistent)
        }
    }

    /// Follows the scheduler's answers on an AnnouncePersistentCachePeer stream: fetches
    /// from the parents it names, asks again (without them) while pieces are missing.
    private func fetchPersistentCacheFromPeers(_ plan: DownloadPlan, scheduler: Scheduler_V2_SchedulerClient, persistent: Bool) async throws {
        let call = try await scheduler.announcePersistentCachePeer(options: CallOptions(timeout: .seconds(3600)))
        defer { call.cancel() }
        let hostID = self.hostID
        @Sendable func send(_ request: Scheduler_V2_AnnouncePersistentCachePeerRequest.RequestOneof) async throws {
            try await call.send(Scheduler_V2_AnnouncePersistentCachePeerRequest.with {
                $0.hostId = hostID
                $0.taskId = plan.taskID
                $0.peerId = plan.peerID
                $0.request = request
            })
        }
        try await send(.registerPersistentCachePeerRequest(Scheduler_V2_RegisterPersistentCachePeerRequest.with {
            $0.persistent = persistent
            $0.pieceLength = plan.layout.pieceLength
            $0.pieceCount = UInt64(plan.layout.pieceCount)
            $0.concurrentPieceCount = UInt32(clamping: config.concurrentPieceCount)
        }))
        var schedules = 0
        var announcedStart = false
        for try await response in call.responses {
            if !announcedStart {
                announcedStart = true
                try await send(.downloadPersistentCachePeerStartedRequest(Scheduler_V2_DownloadPersistentCachePeerStartedRequest()))
            }
            guard case .normalPersistentCacheTaskResponse(let normal)? = response.response else {
                // Empty content: nothing to fetch.
                try await send(.downloadPersistentCachePeerFinishedRequest(Scheduler_V2_DownloadPersistentCachePeerFinishedRequest()))
                try await call.finishSending()
                return
            }
            schedules += 1
            let parents = normal.candidateCacheParents.prefix(Self.maxParentsPerRound).map { p in
                Common_V2_Peer.with {
                    $0.id = p.id
                    $0.host = p.host
                }
            }
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
                try await send(.downloadPersistentCachePeerFinishedRequest(Scheduler_V2_DownloadPersistentCachePeerFinishedRequest()))
                try await call.finishSending()
                return
            }
            guard schedules < Self.maxPersistentCacheSchedules else {
                let why = "pieces still missing after \(schedules) schedules (failed parents: \(failed.joined(separator: ", ")))"
                try? await send(.downloadPersistentCachePeerFailedRequest(Scheduler_V2_DownloadPersistentCachePeerFailedRequest.with {
                    $0.descriptionField = why
                }))
                throw RPCError(code: .unavailable, message: why)
            }
            try await send(.reschedulePersistentCachePeerRequest(Scheduler_V2_ReschedulePersistentCachePeerRequest.with {
                $0.candidateParents = normal.candidateCacheParents.filter { failed.contains($0.id) }
                $0.descriptionField = "pieces missing"
            }))
        }
        throw RPCError(code: .unavailable, message: "the scheduler ended the stream before the download finished")
    }

    // MARK: - Views, updates, removal

    func statLocalPersistentCacheTask(_ taskID: String) async throws -> Dfdaemon_V2_StatLocalPersistentCacheTaskResponse {
        guard let view: Dfdaemon_V2_StatLocalPersistentCacheTaskResponse = await localKeptTask(taskID, kind: .persistentCacheTask) else {
            throw RPCError(code: .notFound, message: "local persistent cache task not found: \(taskID)")
        }
        return view
    }

    func localPersistentCacheTasks() async -> [Dfdaemon_V2_StatLocalPersistentCacheTaskResponse] {
        await localKeptTasks(kind: .persistentCacheTask)
    }

    func isPersistentCacheTask(_ taskID: String) async -> Bool {
        await pieceKind(of: taskID) == .persistentCacheTask
    }

    func isPersistentTask(_ taskID: String) async -> Bool {
        await pieceKind(of: taskID) == .persistentTask
    }

    /// Which kind of task the store holds under `taskID` (`.task` also when it holds none).
    func pieceKind(of taskID: String) async -> VortexPieceKind {
        guard let kept = (try? await store.metadata(taskID))?.persistentCache else { return .task }
        return kept.sourceURL == nil ? .persistentCacheTask : .persistentTask
    }

    /// `StatPersistentCacheTask`: the cluster's view, from the task's scheduler.
    func statPersistentCacheTask(_ taskID: String) async throws -> Common_V2_PersistentCacheTask {
        try await keptScheduler(for: taskID).statPersistentCacheTask(Scheduler_V2_StatPersistentCacheTaskRequest.with {
            $0.hostId = hostID
            $0.taskId = taskID
        }, options: CallOptions(timeout: .seconds(10)))
    }

    /// A cluster-wide delete, asked by a local client (`dfcache rm`): the scheduler forgets
    /// the task and tells every host with a copy; then this node drops its own. The
    /// scheduler takes it only from the cluster's own callers, so this node presents its
    /// client certificate or the cluster's secret.
    func deletePersistentCacheTaskEverywhere(_ taskID: String) async throws {
        _ = try await keptScheduler(for: taskID).deletePersistentCacheTask(Scheduler_V2_DeletePersistentCacheTaskRequest.with {
            $0.hostId = hostID
            $0.taskId = taskID
        }, options: clusterCallOptions(timeout: .seconds(30)))
        try? await store.delete(taskID: taskID)
        logger.info("persistent cache task \(taskID) deleted from the cluster on request")
    }

    /// Whether a call on the upload port comes from the cluster itself: a caller with a
    /// client certificate, or one presenting the cluster's secret.
    func isClusterCaller(_ context: RPCServerContext) -> Bool {
        if tcpCallersAreAuthenticated { return true }
        let configured = config.managerRegistrationSecret ?? ProcessInfo.processInfo.environment["DRAGONFLY_REGISTRATION_SECRET"]
        guard let secret = SharedSecret(configured), let presented = context.requestMetadata[Self.registrationSecretKey] else { return false }
        return secret.matches(presented)
    }
}

/// How a background fetch of a persistent cache task ended, for the caller following it.
final class PersistentFetchOutcome: Sendable {
    private let result = Locked<Result<Void, RPCError>?>(nil)
    func set(_ r: Result<Void, RPCError>) { result.withLock { $0 = r } }
    var value: Result<Void, RPCError>? { result.withLock { $0 } }
}

import Locking

extension Google_Protobuf_Timestamp {
    var date: Date { Date(timeIntervalSince1970: TimeInterval(seconds) + TimeInterval(nanos) / 1e9) }
}
