import DragonflyCommon
import Foundation
import GeneratedAPI
import PeerStorage
import RPCCore

/// Persistent tasks on both services; the work is in Daemon+PersistentTask.
extension DownloadService {
    public func uploadPersistentTask(_ request: Dfdaemon_V2_UploadPersistentTaskRequest,
                                     context: RPCServerContext) async throws -> Common_V2_PersistentTask {
        try await withOptionalTimeout(request.timeout) { try await daemon.uploadPersistentTask(request) }
    }

    public func downloadPersistentTask(_ request: Dfdaemon_V2_DownloadPersistentTaskRequest,
                                       responses: RPCWriter<Dfdaemon_V2_DownloadPersistentTaskResponse>,
                                       context: RPCServerContext) async throws {
        try await streamPersistentTaskDownload(daemon, request, responses, caller: .local)
    }

    public func statPersistentTask(_ request: Dfdaemon_V2_StatPersistentTaskRequest,
                                   context: RPCServerContext) async throws -> Common_V2_PersistentTask {
        try await daemon.statPersistentTask(request.taskId)
    }

    public func statLocalPersistentTask(_ request: Dfdaemon_V2_StatLocalPersistentTaskRequest,
                                        context: RPCServerContext) async throws -> Dfdaemon_V2_StatLocalPersistentTaskResponse {
        try await daemon.statLocalPersistentTask(request.taskId)
    }

    public func listLocalPersistentTasks(_ request: Dfdaemon_V2_ListLocalPersistentTasksRequest,
                                         context: RPCServerContext) async throws -> Dfdaemon_V2_ListLocalPersistentTasksResponse {
        let tasks = await daemon.localPersistentTasks()
        return Dfdaemon_V2_ListLocalPersistentTasksResponse.with { $0.tasks = tasks }
    }
}

extension UploadService {
    /// The scheduler asks this host to hold a replica: fetched from peers only, never
    /// from the origin, never written anywhere but the store.
    public func downloadPersistentTask(_ request: Dfdaemon_V2_DownloadPersistentTaskRequest,
                                       responses: RPCWriter<Dfdaemon_V2_DownloadPersistentTaskResponse>,
                                       context: RPCServerContext) async throws {
        try await streamPersistentTaskDownload(daemon, request, responses, caller: .cluster)
    }

    public func syncPersistentPieces(_ request: Dfdaemon_V2_SyncPersistentPiecesRequest,
                                     responses: RPCWriter<Dfdaemon_V2_SyncPersistentPiecesResponse>,
                                     context: RPCServerContext) async throws {
        guard await daemon.isPersistentTask(request.taskId) else {
            throw RPCError(code: .notFound, message: "persistent task \(request.taskId) is not here")
        }
        try await daemon.syncPieces(request.taskId, interested: request.interestedPieceNumbers) { p in
            try await responses.write(Dfdaemon_V2_SyncPersistentPiecesResponse.with {
                $0.number = p.number
                $0.offset = p.offset
                $0.length = p.length
                $0.ip = daemon.config.ip
                $0.tcpPort = daemon.vortexPort.map { Int32($0) }
            })
        }
    }

    /// As for persistent cache tasks: only turns the flag on; open, as it frees nothing.
    public func updatePersistentTask(_ request: Dfdaemon_V2_UpdatePersistentTaskRequest,
                                     context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        guard await daemon.isPersistentTask(request.taskId) else {
            throw RPCError(code: .notFound, message: "persistent task \(request.taskId) is not here")
        }
        if request.persistent {
            do { try await daemon.store.updatePersistentCache(taskID: request.taskId) { $0.persistent = true } } catch {
                throw RPCError(code: .internal, message: "\(error)")
            }
        }
        return Google_Protobuf_Empty()
    }

    public func statPersistentTask(_ request: Dfdaemon_V2_StatPersistentTaskRequest,
                                   context: RPCServerContext) async throws -> Common_V2_PersistentTask {
        try await daemon.statPersistentTask(request.taskId)
    }

    /// Drops this host's copy, for the cluster's own callers only.
    public func deletePersistentTask(_ request: Dfdaemon_V2_DeletePersistentTaskRequest,
                                     context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        guard daemon.isClusterCaller(context) else {
            throw RPCError(code: .permissionDenied, message: "DeletePersistentTask on the upload port needs mutual TLS or the cluster's secret")
        }
        guard await daemon.isPersistentTask(request.taskId) else {
            throw RPCError(code: .notFound, message: "persistent task \(request.taskId) is not here")
        }
        try? await daemon.store.delete(taskID: request.taskId)
        return Google_Protobuf_Empty()
    }
}

func streamPersistentTaskDownload(_ daemon: Daemon, _ request: Dfdaemon_V2_DownloadPersistentTaskRequest,
                                  _ responses: RPCWriter<Dfdaemon_V2_DownloadPersistentTaskResponse>, caller: DownloadCaller) async throws {
    let ids = IDBox()
    try await withOptionalTimeout(request.timeout) {
        try await daemon.downloadPersistentTask(request, caller: caller, started: { length, peerID in
            let taskID = TaskID.persistent(url: request.url)
            ids.set(taskID, peerID)
            try await responses.write(Dfdaemon_V2_DownloadPersistentTaskResponse.with {
                $0.hostId = daemon.config.hostID
                $0.taskId = taskID
                $0.peerId = peerID
                $0.response = .downloadPersistentTaskStartedResponse(Dfdaemon_V2_DownloadPersistentTaskStartedResponse.with { $0.contentLength = length })
            })
        }, piece: { piece in
            var piece = piece
            let (taskID, peerID) = ids.get()
            if request.needPieceContent {
                do {
                    piece.content = try await daemon.store.readPiece(taskID: taskID, number: piece.number, verifying: false)
                } catch {
                    throw RPCError(code: .dataLoss, message: "piece \(piece.number) of \(taskID): \(error)")
                }
            }
            try await responses.write(Dfdaemon_V2_DownloadPersistentTaskResponse.with {
                $0.hostId = daemon.config.hostID
                $0.taskId = taskID
                $0.peerId = peerID
                $0.response = .downloadPieceFinishedResponse(Dfdaemon_V2_DownloadPieceFinishedResponse.with { $0.piece = piece })
            })
        })
    }
}
