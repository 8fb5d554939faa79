import DragonflyCommon
import Foundation
import GeneratedAPI
import PeerStorage
import RPCCore

/// `dfdaemon.v2.DfdaemonDownload`: what local clients (dfget) ask of their daemon.
public struct DownloadService: Dfdaemon_V2_DfdaemonDownloadProvider {
    let daemon: Daemon
    public init(daemon: Daemon) { self.daemon = daemon }

    public func downloadTask(_ request: Dfdaemon_V2_DownloadTaskRequest, responses: RPCWriter<Dfdaemon_V2_DownloadTaskResponse>,
                             context: RPCServerContext) async throws {
        try await streamDownload(daemon, request, responses, caller: .local)
    }

    public func statTask(_ request: Dfdaemon_V2_StatTaskRequest, context: RPCServerContext) async throws -> Common_V2_Task {
        try await localTaskView(daemon, request.taskId)
    }

    /// A persistent cache task (`dfcache rm`) is deleted cluster-wide; any other task
    /// from this node's store.
    public func deleteTask(_ request: Dfdaemon_V2_DeleteTaskRequest, context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        if await daemon.isPersistentCacheTask(request.taskId) {
            try await daemon.deletePersistentCacheTaskEverywhere(request.taskId)
            return Google_Protobuf_Empty()
        }
        do { try await daemon.store.delete(taskID: request.taskId) } catch { throw RPCError(code: .notFound, message: "\(error)") }
        return Google_Protobuf_Empty()
    }

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

    /// The files and directories under a URL, for `dfget --recursive` (Daemon+Listing.swift).
    public func listTaskEntries(_ request: Dfdaemon_V2_ListTaskEntriesRequest, context: RPCServerContext) async throws
        -> Dfdaemon_V2_ListTaskEntriesResponse {
        try await daemon.listTaskEntries(request)
    }

    /// The node leaves the cluster's view: every scheduler forgets this host and its peers
    /// (it is announced again at the next interval if the daemon keeps running).
    public func deleteHost(_ request: Google_Protobuf_Empty, context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        await daemon.leave()
        return Google_Protobuf_Empty()
    }
}

/// `dfdaemon.v2.DfdaemonUpload`: what other peers and the scheduler ask of this one.
public struct UploadService: Dfdaemon_V2_DfdaemonUploadProvider {
    let daemon: Daemon
    public init(daemon: Daemon) { self.daemon = daemon }

    /// A seed peer asked by the scheduler (or the manager, for a preheat) to fetch a task
    /// does it like any download, but never writes it anywhere but the cache.
    public func downloadTask(_ request: Dfdaemon_V2_DownloadTaskRequest, responses: RPCWriter<Dfdaemon_V2_DownloadTaskResponse>,
                             context: RPCServerContext) async throws {
        try await streamDownload(daemon, request, responses, caller: .cluster)
    }

    public func statTask(_ request: Dfdaemon_V2_StatTaskRequest, context: RPCServerContext) async throws -> Common_V2_Task {
        try await localTaskView(daemon, request.taskId)
    }

    /// A task removed from this node's cache, as a cluster-wide delete asks each peer.
    /// Only for callers that proved who they are: from the TCP port anyone could otherwise
    /// empty a node's cache and send its pulls back to the origin.
    public func deleteTask(_ request: Dfdaemon_V2_DeleteTaskRequest, context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        guard daemon.tcpCallersAreAuthenticated else {
            throw RPCError(code: .permissionDenied,
                           message: "DeleteTask on the upload port needs mutual TLS (tls.caCert); local clients use the unix socket")
        }
        try await daemon.deleteLocalTask(request.taskId)
        return Google_Protobuf_Empty()
    }

    /// As on the download side, but only for callers that proved who they are: a listing
    /// hands back what this node read from an origin, and from the TCP port anyone could
    /// otherwise read the indexes of servers only this node can reach.
    public func listTaskEntries(_ request: Dfdaemon_V2_ListTaskEntriesRequest, context: RPCServerContext) async throws
        -> Dfdaemon_V2_ListTaskEntriesResponse {
        guard daemon.tcpCallersAreAuthenticated else {
            throw RPCError(code: .permissionDenied,
                           message: "ListTaskEntries on the upload port needs mutual TLS (tls.caCert); local clients use the unix socket")
        }
        return try await daemon.listTaskEntries(request)
    }

    public func statLocalTask(_ request: Dfdaemon_V2_StatLocalTaskRequest, context: RPCServerContext) async throws -> Dfdaemon_V2_StatLocalTaskResponse {
        try await daemon.localTask(request.taskId)
    }

    /// `SyncHost`: this host's network state (bandwidth limits and the rates it sends and
    /// receives at) once a second for as long as the caller listens, as upstream's dfdaemon
    /// gives it to children that weigh their parents by load.
    public func syncHost(_ request: Dfdaemon_V2_SyncHostRequest, responses: RPCWriter<Common_V2_Host>,
                         context: RPCServerContext) async throws {
        while !Task.isCancelled {
            let host = daemon.hostInfo
            try await responses.write(Common_V2_Host.with {
                $0.id = host.id
                $0.hostname = host.hostname
                $0.network = host.network
            })
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// The pieces this peer has of a task, sent as they become available.
    public func syncPieces(_ request: Dfdaemon_V2_SyncPiecesRequest, responses: RPCWriter<Dfdaemon_V2_SyncPiecesResponse>,
                           context: RPCServerContext) async throws {
        try await daemon.syncPieces(request.taskId, interested: request.interestedPieceNumbers) { p in
            try await responses.write(Dfdaemon_V2_SyncPiecesResponse.with {
                $0.number = p.number
                $0.offset = p.offset
                $0.length = p.length
                $0.ip = daemon.config.ip
                $0.tcpPort = daemon.vortexPort.map { Int32($0) }
            })
        }
    }

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

/// `dfswift.peer.v1.PieceTransfer`: piece bytes for our own peers. A piece that is not
/// here yet is waited for (the parent may still be fetching it), up to the piece timeout.
public struct PieceTransferService: Dfswift_Peer_V1_PieceTransferProvider {
    let daemon: Daemon
    public init(daemon: Daemon) { self.daemon = daemon }

    public func downloadPieces(_ requests: RPCStream<Dfswift_Peer_V1_PieceRequest>, responses: RPCWriter<Dfswift_Peer_V1_PieceResponse>,
                               context: RPCServerContext) async throws {
        let child = context.peerHost ?? "local"
        try daemon.beginUpload(child: child)
        defer { daemon.endUpload(child: child) }
        for try await request in requests {
            let (p, bytes): (TaskMetadata.Piece, [UInt8])
            do {
                (p, bytes) = try await daemon.waitForPiece(taskID: request.taskId, number: request.number)
            } catch .notHere(let why) {
                throw RPCError(code: .notFound, message: why)
            } catch .unreadable(let why) {
                throw RPCError(code: .dataLoss, message: why)
            }
            try await daemon.uploadLimit.take(bytes.count)
            try await responses.write(Dfswift_Peer_V1_PieceResponse.with {
                $0.number = p.number
                $0.offset = p.offset
                $0.length = p.length
                $0.digest = p.digest
                $0.content = bytes
            })
            daemon.countUpload(bytes.count)
        }
    }
}

func streamDownload(_ daemon: Daemon, _ request: Dfdaemon_V2_DownloadTaskRequest,
                    _ responses: RPCWriter<Dfdaemon_V2_DownloadTaskResponse>, caller: DownloadCaller) async throws {
    guard let download = request.download, !download.url.isEmpty else {
        throw RPCError(code: .invalidArgument, message: "missing download")
    }
    let limit = try downloadTimeout(download.timeout)
    let ids = IDBox()
    guard let limit else {
        return try await streamDownload(daemon, download, responses, caller: caller, ids: ids)
    }
    do {
        try await withTimeout(limit) { try await streamDownload(daemon, download, responses, caller: caller, ids: ids) }
    } catch is TimeoutError {
        throw RPCError(code: .deadlineExceeded, message: "the download did not finish within its timeout (\(limit))")
    }
}

/// `Download.timeout`, bounded: absent or zero is no limit; a negative or malformed one is
/// refused; anything past a week is a week.
func downloadTimeout(_ value: Google_Protobuf_Duration?) throws(RPCError) -> Duration? {
    guard let value, value.seconds != 0 || value.nanos != 0 else { return nil }
    guard value.seconds >= 0, value.nanos >= 0, value.nanos < 1_000_000_000 else {
        throw RPCError(code: .invalidArgument, message: "timeout must be a non-negative duration")
    }
    let week: Int64 = 7 * 86_400
    return value.seconds >= week ? .seconds(week) : .seconds(value.seconds) + .nanoseconds(Int64(value.nanos))
}

private func streamDownload(_ daemon: Daemon, _ download: Common_V2_Download, _ responses: RPCWriter<Dfdaemon_V2_DownloadTaskResponse>,
                            caller: DownloadCaller, ids: IDBox) async throws {
    do {
        try await streamDownloadUnmapped(daemon, download, responses, caller: caller, ids: ids)
    } catch let error as UnsatisfiableRange {
        throw RPCError(code: .failedPrecondition, message: error.description)
    }
}

private func streamDownloadUnmapped(_ daemon: Daemon, _ download: Common_V2_Download, _ responses: RPCWriter<Dfdaemon_V2_DownloadTaskResponse>,
                                    caller: DownloadCaller, ids: IDBox) async throws {
    try await daemon.download(download, caller: caller, started: { started, taskID, peerID in
        ids.set(taskID, peerID)
        try await responses.write(Dfdaemon_V2_DownloadTaskResponse.with {
            $0.hostId = daemon.config.hostID
            $0.taskId = taskID
            $0.peerId = peerID
            $0.response = .downloadTaskStartedResponse(started)
        })
    }, piece: { piece in
        let (taskID, peerID) = ids.get()
        var piece = piece
        // `need_piece_content`: the caller (dfget --transfer-from-dfdaemon, dfcache export)
        // writes each piece itself. It is read from the store only now, when the previous
        // response has been taken: a slow reader holds back this loop, not memory.
        if download.needPieceContent {
            do {
                piece.content = try await daemon.store.readPiece(taskID: taskID, number: piece.number, verifying: false)
            } catch {
                throw RPCError(code: .dataLoss, message: "piece \(piece.number) of \(taskID): \(error)")
            }
        }
        try await responses.write(Dfdaemon_V2_DownloadTaskResponse.with {
            $0.hostId = daemon.config.hostID
            $0.taskId = taskID
            $0.peerId = peerID
            $0.response = .downloadPieceFinishedResponse(Dfdaemon_V2_DownloadPieceFinishedResponse.with { $0.piece = piece })
        })
    })
}

func localTaskView(_ daemon: Daemon, _ taskID: String) async throws -> Common_V2_Task {
    guard let m = try? await daemon.store.metadata(taskID) else { throw RPCError(code: .notFound, message: "task \(taskID) not found") }
    return Common_V2_Task.with { t in
        t.id = m.taskID
        // Any TCP client may ask: a signed URL's signature is not theirs to see.
        t.url = LogRedaction.maskingCredentials(inURL: m.url)
        t.contentLength = m.contentLength
        t.pieceCount = m.pieceCount
        t.state = m.finished ? "Succeeded" : "Running"
        t.pieces = m.pieces.values.sorted { $0.number < $1.number }.map { Common_V2_Piece($0, traffic: nil) }
    }
}

import Locking

/// The ids a download got, for the progress messages that follow its start.
final class IDBox: Sendable {
    private let ids = Locked(("", ""))
    func set(_ task: String, _ peer: String) { ids.withLock { $0 = (task, peer) } }
    func get() -> (String, String) { ids.withLock { $0 } }
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
