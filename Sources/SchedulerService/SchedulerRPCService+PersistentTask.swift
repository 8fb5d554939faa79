import DragonflyCommon
import GeneratedAPI
import RPCCore
import SchedulerCore

/// Persistent tasks: a file whose home is an origin (object storage upstream; here an
/// HTTP(S) URL), kept by the cluster in several copies until its TTL. As persistent cache
/// tasks, except that a peer no copy can serve goes back to the origin.
extension SchedulerRPCService {
    func enabledPersistentTasks() throws -> ReplicaKeeper {
        guard let persistentTasks else { throw RPCError(code: .unimplemented, message: "persistent tasks are off on this scheduler") }
        return persistentTasks
    }

    public func uploadPersistentTaskStarted(_ request: Scheduler_V2_UploadPersistentTaskStartedRequest,
                                            context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        let keeper = try enabledPersistentTasks()
        guard await engine.hostDirectory()[request.hostId] != nil else {
            throw RPCError(code: .notFound, message: "host \(request.hostId) not found")
        }
        guard !request.url.isEmpty, request.url.utf8.count <= 8192 else {
            throw RPCError(code: .invalidArgument, message: "url must be 1 to 8192 bytes")
        }
        // The request carries no piece length: it is Dragonfly's rule for the length, as the
        // importing dfdaemon chose it.
        let layout: PieceLayout
        do {
            layout = try PieceLayout.checked(contentLength: request.contentLength, requestedPieceLength: nil)
        } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
        let task = KeptTask(id: request.taskId, replicaCount: request.persistentReplicaCount, url: request.url,
                            pieceLength: layout.pieceLength, contentLength: request.contentLength, pieceCount: request.pieceCount,
                            ttl: try ReplicaRegistry.checkedTTL(request.ttl))
        try await keeper.registry.uploadStarted(task, hostID: request.hostId, peerID: request.peerId)
        return Google_Protobuf_Empty()
    }

    public func uploadPersistentTaskFinished(_ request: Scheduler_V2_UploadPersistentTaskFinishedRequest,
                                             context: RPCServerContext) async throws -> Common_V2_PersistentTask {
        let keeper = try enabledPersistentTasks()
        let task = try await keeper.registry.uploadFinished(taskID: request.taskId, peerID: request.peerId)
        Task { await keeper.reconcile() }
        return task.persistentTask
    }

    public func uploadPersistentTaskFailed(_ request: Scheduler_V2_UploadPersistentTaskFailedRequest,
                                           context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        await try enabledPersistentTasks().registry.uploadFailed(taskID: request.taskId, peerID: request.peerId)
        return Google_Protobuf_Empty()
    }

    public func statPersistentTask(_ request: Scheduler_V2_StatPersistentTaskRequest,
                                   context: RPCServerContext) async throws -> Common_V2_PersistentTask {
        try await enabledPersistentTasks().registry.stat(taskID: request.taskId).persistentTask
    }

    public func statPersistentPeer(_ request: Scheduler_V2_StatPersistentPeerRequest,
                                   context: RPCServerContext) async throws -> Common_V2_PersistentPeer {
        let keeper = try enabledPersistentTasks()
        return try await keeper.registry.statPeer(taskID: request.taskId, peerID: request.peerId, hosts: engine.hostDirectory()).persistentPeer
    }

    /// Forgets the task cluster-wide and has every host drop its copy; the origin keeps its
    /// own. Only for the cluster's own callers, as for persistent cache tasks.
    public func deletePersistentTask(_ request: Scheduler_V2_DeletePersistentTaskRequest,
                                     context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        let keeper = try enabledPersistentTasks()
        try keeper.access.authorize(context, "DeletePersistentTask")
        let hosts = try await keeper.registry.delete(taskID: request.taskId)
        await keeper.deleteCopies(of: request.taskId, on: hosts)
        return Google_Protobuf_Empty()
    }

    public func deletePersistentPeer(_ request: Scheduler_V2_DeletePersistentPeerRequest,
                                     context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        let keeper = try enabledPersistentTasks()
        try keeper.access.authorize(context, "DeletePersistentPeer")
        let host = try await keeper.registry.deletePeer(taskID: request.taskId, peerID: request.peerId)
        await keeper.deleteCopies(of: request.taskId, on: [host])
        Task { await keeper.reconcile() }
        return Google_Protobuf_Empty()
    }

    /// A peer fetching a persistent task: parents, or the origin when none can serve it.
    public func announcePersistentPeer(_ requests: RPCStream<Scheduler_V2_AnnouncePersistentPeerRequest>,
                                       responses: RPCWriter<Scheduler_V2_AnnouncePersistentPeerResponse>,
                                       context: RPCServerContext) async throws {
        let keeper = try enabledPersistentTasks()
        let registry = keeper.registry
        var registered: (task: String, peer: String)?
        do {
            for try await r in requests {
                if let registered, r.taskId != registered.task || r.peerId != registered.peer {
                    throw RPCError(code: .invalidArgument, message: "one stream announces one peer")
                }
                if case .registerPersistentPeerRequest(let register)? = r.request {
                    guard registered == nil else { throw RPCError(code: .failedPrecondition, message: "peer \(r.peerId) is already registered") }
                    let answer = try await registry.register(hostID: r.hostId, taskID: r.taskId, peerID: r.peerId, persistent: register.persistent,
                                                             needBackToSource: register.needBackToSource, hosts: engine.hostDirectory())
                    registered = (r.taskId, r.peerId)
                    try await responses.write(Self.persistentAnswer(answer))
                    continue
                }
                guard let (task, peer) = registered else { throw RPCError(code: .failedPrecondition, message: "register the peer first") }
                switch r.request {
                case .downloadPersistentPeerStartedRequest?, .downloadPersistentPeerBackToSourceStartedRequest?:
                    await registry.peerStarted(taskID: task, peerID: peer)
                case .reschedulePersistentPeerRequest(let reschedule)?:
                    let answer = try await registry.reschedule(taskID: task, peerID: peer, excluding: reschedule.candidateParents.map(\.id),
                                                               hosts: engine.hostDirectory())
                    try await responses.write(Self.persistentAnswer(answer))
                case .downloadPieceFailedRequest(let failed)?:
                    if !failed.parentId.isEmpty, failed.temporary {
                        await registry.blockParent(taskID: task, peerID: peer, parentID: failed.parentId)
                    }
                case .downloadPieceFinishedRequest?, .downloadPieceBackToSourceFinishedRequest?, .downloadPieceBackToSourceFailedRequest?:
                    continue
                case .downloadPersistentPeerFinishedRequest?, .downloadPersistentPeerBackToSourceFinishedRequest?:
                    await registry.peerFinished(taskID: task, peerID: peer)
                    keeper.verifyInBackground(taskID: task, peerID: peer)
                    return
                case .downloadPersistentPeerFailedRequest?, .downloadPersistentPeerBackToSourceFailedRequest?:
                    await registry.peerFailed(taskID: task, peerID: peer)
                    return
                case .registerPersistentPeerRequest?, nil:
                    throw RPCError(code: .invalidArgument, message: "empty AnnouncePersistentPeerRequest")
                }
            }
            if let registered { await registry.peerFailed(taskID: registered.task, peerID: registered.peer) }
        } catch {
            if let registered { await registry.peerFailed(taskID: registered.task, peerID: registered.peer) }
            throw error
        }
    }

    static func persistentAnswer(_ registration: ReplicaRegistry.Registration) -> Scheduler_V2_AnnouncePersistentPeerResponse {
        var response = Scheduler_V2_AnnouncePersistentPeerResponse()
        switch registration {
        case .parents(let parents):
            response.response = .normalPersistentTaskResponse(Scheduler_V2_NormalPersistentTaskResponse.with {
                $0.candidateParents = parents.map(\.persistentPeer)
            })
        case .empty:
            response.response = .emptyPersistentTaskResponse(Scheduler_V2_EmptyPersistentTaskResponse())
        case .backToSource:
            response.response = .needBackToSourceResponse(Scheduler_V2_NeedBackToSourceResponse.with {
                $0.descriptionField = "no peer holds the task yet"
            })
        }
        return response
    }
}
