import DragonflyCommon
import Foundation
import GeneratedAPI
import PeerStorage
import RPCCore

/// Persistent cache tasks (`dfcache`) on both services; the work is in Daemon+PersistentCache.
extension DownloadService {
    public func uploadPersistentCacheTask(_ request: Dfdaemon_V2_UploadPersistentCacheTaskRequest,
                                          context: RPCServerContext) async throws -> Common_V2_PersistentCacheTask {
        try await withOptionalTimeout(request.timeout) { try await daemon.importPersistentCacheTask(request) }
    }

    public func downloadPersistentCacheTask(_ request: Dfdaemon_V2_DownloadPersistentCacheTaskRequest,
                                            responses: RPCWriter<Dfdaemon_V2_DownloadPersistentCacheTaskResponse>,
                                            context: RPCServerContext) async throws {
        try await streamPersistentCacheDownload(daemon, request, responses, caller: .local)
    }

    public func statPersistentCacheTask(_ request: Dfdaemon_V2_StatPersistentCacheTaskRequest,
                                        context: RPCServerContext) async throws -> Common_V2_PersistentCacheTask {
        try await daemon.statPersistentCacheTask(request.taskId)
    }

    public func statLocalPersistentCacheTask(_ request: Dfdaemon_V2_StatLocalPersistentCacheTaskRequest,
                                             context: RPCServerContext) async throws -> Dfdaemon_V2_StatLocalPersistentCacheTaskResponse {
        try await daemon.statLocalPersistentCacheTask(request.taskId)
    }

    public func listLocalPersistentCacheTasks(_ request: Dfdaemon_V2_ListLocalPersistentCacheTasksRequest,
                                              context: RPCServerContext) async throws -> Dfdaemon_V2_ListLocalPersistentCacheTasksResponse {
        let tasks = await daemon.localPersistentCacheTasks()
        return Dfdaemon_V2_ListLocalPersistentCacheTasksResponse.with { $0.tasks = tasks }
    }

    public func statLocalTask(_ request: Dfdaemon_V2_StatLocalTaskRequest, context: RPCServerContext) async throws -> Dfdaemon_V2_StatLocalTaskResponse {
        try await daemon.localTask(request.taskId)
    }

    public func listLocalTasks(_ request: Dfdaemon_V2_ListLocalTasksRequest, context: RPCServerContext) async throws -> Dfdaemon_V2_ListLocalTasksResponse {
        let tasks = await daemon.localTasks()
        return Dfdaemon_V2_ListLocalTasksResponse.with { $0.tasks = tasks }
    }

    public func deleteLocalTask(_ request: Dfdaemon_V2_DeleteLocalTaskRequest, context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        try await daemon.deleteLocalTask(request.taskId)
        return Google_Protobuf_Empty()
    }
}

extension UploadService {
    /// As SyncPieces, for a persistent cache task.
    public func syncPersistentCachePieces(_ request: Dfdaemon_V2_SyncPersistentCachePiecesRequest,
                                          responses: RPCWriter<Dfdaemon_V2_SyncPersistentCachePiecesResponse>,
                                          context: RPCServerContext) async throws {
        guard await daemon.isPersistentCacheTask(request.taskId) else {
            throw RPCError(code: .notFound, message: "persistent cache task \(request.taskId) is not here")
        }
        try await daemon.syncPieces(request.taskId, interested: request.interestedPieceNumbers) { p in
            try await responses.write(Dfdaemon_V2_SyncPersistentCachePiecesResponse.with {
                $0.number = p.number
                $0.offset = p.offset
                $0.length = p.length
                $0.ip = daemon.config.ip
                $0.tcpPort = daemon.vortexPort.map { Int32($0) }
            })
        }
    }

    /// The scheduler asks this host to hold a replica: it is fetched from peers, never
    /// written anywhere but the store.
    public func downloadPersistentCacheTask(_ request: Dfdaemon_V2_DownloadPersistentCacheTaskRequest,
                                            responses: RPCWriter<Dfdaemon_V2_DownloadPersistentCacheTaskResponse>,
                                            context: RPCServerContext) async throws {
        try await streamPersistentCacheDownload(daemon, request, responses, caller: .cluster)
    }

    /// The scheduler counts this host's copy as a replica: the storage GC keeps it until
    /// its TTL. Only ever turns the flag on, as upstream does; open like upstream's, since
    /// it frees nothing and the TTL still bounds the copy.
    public func updatePersistentCacheTask(_ request: Dfdaemon_V2_UpdatePersistentCacheTaskRequest,
                                          context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        guard await daemon.isPersistentCacheTask(request.taskId) else {
            throw RPCError(code: .notFound, message: "persistent cache task \(request.taskId) is not here")
        }
        if request.persistent {
            do { try await daemon.store.updatePersistentCache(taskID: request.taskId) { $0.persistent = true } } catch {
                throw RPCError(code: .internal, message: "\(error)")
            }
        }
        return Google_Protobuf_Empty()
    }

    public func statPersistentCacheTask(_ request: Dfdaemon_V2_StatPersistentCacheTaskRequest,
                                        context: RPCServerContext) async throws -> Common_V2_PersistentCacheTask {
        try await daemon.statPersistentCacheTask(request.taskId)
    }

    /// Drops this host's copy, as the scheduler asks when the task is deleted. Only for the
    /// cluster's own callers: from the TCP port anyone could otherwise destroy replicas of
    /// content that exists nowhere else.
    public func deletePersistentCacheTask(_ request: Dfdaemon_V2_DeletePersistentCacheTaskRequest,
                                          context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        guard daemon.isClusterCaller(context) else {
            throw RPCError(code: .permissionDenied, message: "DeletePersistentCacheTask on the upload port needs mutual TLS or the cluster's secret")
        }
        guard await daemon.isPersistentCacheTask(request.taskId) else {
            throw RPCError(code: .notFound, message: "persistent cache task \(request.taskId) is not here")
        }
        try? await daemon.store.delete(taskID: request.taskId)
        return Google_Protobuf_Empty()
    }
}

func streamPersistentCacheDownload(_ daemon: Daemon, _ request: Dfdaemon_V2_DownloadPersistentCacheTaskRequest,
                                   _ responses: RPCWriter<Dfdaemon_V2_DownloadPersistentCacheTaskResponse>, caller: DownloadCaller) async throws {
    let ids = IDBox()
    try await withOptionalTimeout(request.timeout) {
        try await daemon.downloadPersistentCacheTask(request, caller: caller, started: { length, peerID in
            ids.set(request.taskId, peerID)
            try await responses.write(Dfdaemon_V2_DownloadPersistentCacheTaskResponse.with {
                $0.hostId = daemon.config.hostID
                $0.taskId = request.taskId
                $0.peerId = peerID
                $0.response = .downloadPersistentCacheTaskStartedResponse(
                    Dfdaemon_V2_DownloadPersistentCacheTaskStartedResponse.with { $0.contentLength = length })
            })
        }, piece: { piece in
            var piece = piece
            if request.needPieceContent {
                do {
                    piece.content = try await daemon.store.readPiece(taskID: request.taskId, number: piece.number, verifying: false)
                } catch {
                    throw RPCError(code: .dataLoss, message: "piece \(piece.number) of \(request.taskId): \(error)")
                }
            }
            try await responses.write(Dfdaemon_V2_DownloadPersistentCacheTaskResponse.with {
                $0.hostId = daemon.config.hostID
                $0.taskId = request.taskId
                $0.peerId = ids.get().1
                $0.response = .downloadPieceFinishedResponse(Dfdaemon_V2_DownloadPieceFinishedResponse.with { $0.piece = piece })
            })
        })
    }
}

/// Runs `body` within the request's `timeout` (absent or zero: no limit).
func withOptionalTimeout<T: Sendable>(_ timeout: Google_Protobuf_Duration?, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    guard let limit = try downloadTimeout(timeout) else { return try await body() }
    do {
        return try await withTimeout(limit) { try await body() }
    } catch is TimeoutError {
        throw RPCError(code: .deadlineExceeded, message: "the request did not finish within its timeout (\(limit))")
    }
}
