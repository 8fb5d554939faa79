import DragonflyCommon
import NIOCore
import Foundation
import GeneratedAPI
import PeerStorage
import RPCCore
import VortexProtocol

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

    /// A persistent cache task (`dfcache rm`) or a persistent task is deleted cluster-wide;
    /// any other task from this node's store.
    public func deleteTask(_ request: Dfdaemon_V2_DeleteTaskRequest, context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        switch await daemon.pieceKind(of: request.taskId) {
        case .persistentCacheTask:
            try await daemon.deletePersistentCacheTaskEverywhere(request.taskId)
            return Google_Protobuf_Empty()
        case .persistentTask:
            try await daemon.deletePersistentTaskEverywhere(request.taskId)
            return Google_Protobuf_Empty()
        case .task:
            break
        }
        do { try await daemon.store.delete(taskID: request.taskId) } catch { throw RPCError(code: .notFound, message: "\(error)") }
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
            try await sendPiece(request, responses)
        }
    }

    /// Sends a piece whole, or in responses of at most `max_chunk_size` bytes (bounded
    /// here) when the child asks for that, read from the store's file one response at a
    /// time: then a 4 MiB piece never sits whole in memory. Each response is encoded
    /// around its content, which is read straight into the buffer the transport sends.
    private func sendPiece(_ request: Dfswift_Peer_V1_PieceRequest, _ responses: RPCWriter<Dfswift_Peer_V1_PieceResponse>) async throws {
        let chunk = request.maxChunkSize == 0 ? UInt64.max : UInt64(min(max(request.maxChunkSize, Self.smallestChunk), Self.largestChunk))
        let (p, file): (TaskMetadata.Piece, NIOFileHandle)
        do {
            (p, file) = try await daemon.waitForPieceFile(taskID: request.taskId, number: request.number)
        } catch .notHere(let why) {
            throw RPCError(code: .notFound, message: why)
        } catch .unreadable(let why) {
            throw RPCError(code: .dataLoss, message: why)
        }
        defer { try? file.close() }
        var sent: UInt64 = 0
        repeat {
            let n = min(chunk, p.length - sent)
            let head = Dfswift_Peer_V1_PieceResponse.with {
                $0.number = p.number
                $0.offset = p.offset
                $0.length = p.length
                $0.digest = p.digest
                $0.contentOffset = sent
            }.serializedBytes(beforeBytesField: Self.contentField, length: Int(n))
            let message: ByteBuffer
            do {
                message = try await daemon.store.read(file, offset: p.offset + sent, length: n, after: head)
            } catch {
                throw RPCError(code: .dataLoss, message: "piece \(p.number) of \(request.taskId): \(error)")
            }
            try await daemon.uploadLimit.take(Int(n))
            try await responses.writeEncoded(message)
            daemon.countUpload(Int(n))
            sent += n
        } while sent < p.length
    }

    /// `PieceResponse.content`, which `sendPiece` encodes itself.
    static let contentField: UInt32 = 5

    /// Chunk sizes a child may ask for: small enough to bound memory, large enough that
    /// a hostile child cannot make us send a message per byte.
    static let smallestChunk: UInt32 = 64 << 10
    static let largestChunk: UInt32 = 16 << 20
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
