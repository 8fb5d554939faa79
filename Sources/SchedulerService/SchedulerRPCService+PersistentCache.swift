import GeneratedAPI
import RPCCore
import SchedulerCore

/// Persistent cache tasks (`dfcache`): imports, downloads, and the views of both.
extension SchedulerRPCService {
    func enabledPersistentCache() throws -> ReplicaKeeper {
        guard let persistentCache else { throw RPCError(code: .unimplemented, message: "persistent cache tasks are off on this scheduler") }
        return persistentCache
    }

    public func uploadPersistentCacheTaskStarted(_ request: Scheduler_V2_UploadPersistentCacheTaskStartedRequest,
                                                 context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        let cache = try enabledPersistentCache()
        guard await engine.hostDirectory()[request.hostId] != nil else {
            throw RPCError(code: .notFound, message: "host \(request.hostId) not found")
        }
        let task = KeptTask(id: request.taskId, replicaCount: request.persistentReplicaCount, tag: request.tag,
                            application: request.application, pieceLength: request.pieceLength, contentLength: request.contentLength,
                            pieceCount: request.pieceCount, ttl: try ReplicaRegistry.checkedTTL(request.ttl))
        try await cache.registry.uploadStarted(task, hostID: request.hostId, peerID: request.peerId)
        return Google_Protobuf_Empty()
    }

    public func uploadPersistentCacheTaskFinished(_ request: Scheduler_V2_UploadPersistentCacheTaskFinishedRequest,
                                                  context: RPCServerContext) async throws -> Common_V2_PersistentCacheTask {
        let cache = try enabledPersistentCache()
        let task = try await cache.registry.uploadFinished(taskID: request.taskId, peerID: request.peerId)
        // Replicas are made at once, not at the next pass.
        Task { await cache.reconcile() }
        return task.persistentCacheTask
    }

    public func uploadPersistentCacheTaskFailed(_ request: Scheduler_V2_UploadPersistentCacheTaskFailedRequest,
                                                context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        try await enabledPersistentCache().registry.uploadFailed(taskID: request.taskId, peerID: request.peerId)
        return Google_Protobuf_Empty()
    }

    public func statPersistentCacheTask(_ request: Scheduler_V2_StatPersistentCacheTaskRequest,
                                        context: RPCServerContext) async throws -> Common_V2_PersistentCacheTask {
        try await enabledPersistentCache().registry.stat(taskID: request.taskId).persistentCacheTask
    }

    public func statPersistentCachePeer(_ request: Scheduler_V2_StatPersistentCachePeerRequest,
                                        context: RPCServerContext) async throws -> Common_V2_PersistentCachePeer {
        let cache = try enabledPersistentCache()
        return try await cache.registry.statPeer(taskID: request.taskId, peerID: request.peerId, hosts: engine.hostDirectory()).persistentCachePeer
    }

    /// Removes the task cluster-wide. Only the cluster's own callers may: anyone else could
    /// otherwise destroy content that exists nowhere but in the cluster.
    public func deletePersistentCacheTask(_ request: Scheduler_V2_DeletePersistentCacheTaskRequest,
                                          context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        let cache = try enabledPersistentCache()
        try cache.access.authorize(context, "DeletePersistentCacheTask")
        let hosts = try await cache.registry.delete(taskID: request.taskId)
        await cache.deleteCopies(of: request.taskId, on: hosts)
        return Google_Protobuf_Empty()
    }

    /// Removes one replica; the next pass replaces it elsewhere if the count falls short.
    public func deletePersistentCachePeer(_ request: Scheduler_V2_DeletePersistentCachePeerRequest,
                                          context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        let cache = try enabledPersistentCache()
        try cache.access.authorize(context, "DeletePersistentCachePeer")
        let host = try await cache.registry.deletePeer(taskID: request.taskId, peerID: request.peerId)
        await cache.deleteCopies(of: request.taskId, on: [host])
        Task { await cache.reconcile() }
        return Google_Protobuf_Empty()
    }

    /// A peer fetching a persistent cache task: registered, given parents (again after a
    /// reschedule), and followed to the end of its download.
    public func announcePersistentCachePeer(_ requests: RPCStream<Scheduler_V2_AnnouncePersistentCachePeerRequest>,
                                            responses: RPCWriter<Scheduler_V2_AnnouncePersistentCachePeerResponse>,
                                            context: RPCServerContext) async throws {
        let keeper = try enabledPersistentCache()
        let registry = keeper.registry
        var registered: (task: String, peer: String)?
        do {
            for try await r in requests {
                if let registered, r.taskId != registered.task || r.peerId != registered.peer {
                    throw RPCError(code: .invalidArgument, message: "one stream announces one peer")
                }
                switch r.request {
                case .registerPersistentCachePeerRequest(let register)?:
                    guard registered == nil else { throw RPCError(code: .failedPrecondition, message: "peer \(r.peerId) is already registered") }
                    let answer = try await registry.register(hostID: r.hostId, taskID: r.taskId, peerID: r.peerId,
                                                             persistent: register.persistent, hosts: engine.hostDirectory())
                    registered = (r.taskId, r.peerId)
                    try await responses.write(Self.answer(answer))
                case .downloadPersistentCachePeerStartedRequest?:
                    guard let registered else { throw RPCError(code: .failedPrecondition, message: "register the peer first") }
                    await registry.peerStarted(taskID: registered.task, peerID: registered.peer)
                case .reschedulePersistentCachePeerRequest(let reschedule)?:
                    guard let registered else { throw RPCError(code: .failedPrecondition, message: "register the peer first") }
                    let answer = try await registry.reschedule(taskID: registered.task, peerID: registered.peer,
                                                               excluding: reschedule.candidateParents.map(\.id), hosts: engine.hostDirectory())
                    try await responses.write(Self.answer(answer))
                case .downloadPieceFailedRequest(let failed)?:
                    guard let registered else { throw RPCError(code: .failedPrecondition, message: "register the peer first") }
                    if !failed.parentId.isEmpty, failed.temporary {
                        await registry.blockParent(taskID: registered.task, peerID: registered.peer, parentID: failed.parentId)
                    }
                case .downloadPieceFinishedRequest?:
                    continue
                case .downloadPersistentCachePeerFinishedRequest?:
                    guard let registered else { throw RPCError(code: .failedPrecondition, message: "register the peer first") }
                    await registry.peerFinished(taskID: registered.task, peerID: registered.peer)
                    keeper.verifyInBackground(taskID: registered.task, peerID: registered.peer)
                    return
                case .downloadPersistentCachePeerFailedRequest?:
                    guard let registered else { throw RPCError(code: .failedPrecondition, message: "register the peer first") }
                    await registry.peerFailed(taskID: registered.task, peerID: registered.peer)
                    return
                case nil:
                    throw RPCError(code: .invalidArgument, message: "empty AnnouncePersistentCachePeerRequest")
                }
            }
            // The stream ended without a finish: the download did not happen.
            if let registered { await registry.peerFailed(taskID: registered.task, peerID: registered.peer) }
        } catch {
            if let registered { await registry.peerFailed(taskID: registered.task, peerID: registered.peer) }
            throw error
        }
    }

    static func answer(_ registration: ReplicaRegistry.Registration) throws(RPCError) -> Scheduler_V2_AnnouncePersistentCachePeerResponse {
        var response = Scheduler_V2_AnnouncePersistentCachePeerResponse()
        switch registration {
        case .parents(let parents):
            response.response = .normalPersistentCacheTaskResponse(Scheduler_V2_NormalPersistentCacheTaskResponse.with {
                $0.candidateCacheParents = parents.map(\.persistentCachePeer)
            })
        case .empty:
            response.response = .emptyPersistentCacheTaskResponse(Scheduler_V2_EmptyPersistentCacheTaskResponse())
        case .backToSource:
            throw RPCError(code: .failedPrecondition, message: "a persistent cache task has no origin to go back to")
        }
        return response
    }
}
