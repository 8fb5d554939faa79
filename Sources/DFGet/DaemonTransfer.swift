import TransferCLI
import DragonflyCommon
import Foundation
import GeneratedAPI
import RPCCore
import DragonflyRPC
import RPCTransport

/// One download through a dfdaemon's DownloadTask: the daemon writes the output, or, with
/// `writesPieces` (`--transfer-from-dfdaemon`), sends each piece for dfget to write.
struct DaemonTransfer {
    enum Outcome { case done, failed(RPCError), unreachable }

    let download: Common_V2_Download
    let output: URL
    let timeout: Double
    let tls: (ca: String?, cert: String?, key: String?)
    let writesPieces: Bool
    let log: ClientLog

    /// `.unreachable` when the daemon never started the task, so the next daemon (or the
    /// origin) can be tried.
    func run(via address: String, _ progress: ProgressReporter) async -> Outcome {
        guard let channel = try? RPCChannel(configuration: {
            var c = try RPCClientConfiguration.parse(address)
            if tls.ca != nil || tls.cert != nil {
                c.secure(with: TLSConfiguration(certificateChainFile: tls.cert, privateKeyFile: tls.key, trustRootsFile: tls.ca))
            }
            c.connectTimeout = .seconds(2)
            // Inline pieces are up to 64 MiB each, plus their envelope.
            if writesPieces { c.maxReceiveMessageSize = Int(PieceLayout.maxPieceLength) + (1 << 20) }
            return c
        }()) else { return .unreachable }
        defer { Task { await channel.close() } }
        let client = Dfdaemon_V2_DfdaemonDownloadClient(RPCClient(transport: channel))
        let writer = writesPieces ? PieceFileWriter(output: output) : nil
        var started = false
        do {
            let call = try await client.downloadTask(Dfdaemon_V2_DownloadTaskRequest.with { $0.download = download },
                                                     options: CallOptions(timeout: .seconds(Int64(timeout))))
            for try await r in call.responses {
                switch r.response {
                case .downloadTaskStartedResponse(let s)?:
                    started = true
                    log.debug("task \(r.taskId), peer \(r.peerId) on host \(r.hostId): \(s.contentLength) bytes in \(s.pieces.count) pieces")
                    try writer?.start(contentLength: s.contentLength, pieces: s.pieces.map(\.number))
                    progress.started(total: s.contentLength)
                case .downloadPieceFinishedResponse(let p)?:
                    guard let piece = p.piece else { break }
                    try writer?.write(piece)
                    progress.piece(length: piece.length, source: .init(piece.trafficType))
                case nil: break
                }
            }
            try writer?.commit()
            progress.finish()
            return .done
        } catch let error as RPCError {
            progress.finish()
            if !started && error.code == .unavailable { return .unreachable }
            return .failed(error)
        } catch let error as PieceFileWriter.Failure {
            progress.finish()
            return .failed(RPCError(code: .dataLoss, message: error.description))
        } catch {
            return started ? .failed(RPCError(code: .unknown, message: "\(error)")) : .unreachable
        }
    }
}
