import DragonflyCommon
import GeneratedAPI
import Logging
import RPCCore
import RPCTransport
import SchedulerCore
import Synchronization

/// Asks a seed peer to fetch a task (`DfdaemonUpload.DownloadTask`) and drains its
/// progress stream. One channel per seed address, reused.
public final class SeedPeerClient: Sendable {
    private let channels: RPCChannelPool
    private let logger: Logger

    /// `tls` is for calls to seed peers that serve TLS.
    public init(tls: TLSConfiguration? = nil, logger: Logger = Logger(label: "scheduler.seed")) {
        channels = RPCChannelPool { config in if case .tcp = config.target { config.tls = tls } }
        self.logger = logger
    }

    public func download(_ request: SeedDownload) async {
        do {
            let client = Dfdaemon_V2_DfdaemonUploadClient(RPCClient(transport: try channels.channel(request.address)))
            var r = Dfdaemon_V2_DownloadTaskRequest()
            r.download = request.download
            let call = try await client.downloadTask(r)
            var responses = 0
            for try await _ in call.responses { responses += 1 }
            logger.debug("seed peer \(request.address) finished \(LogRedaction.url(request.download.url)) after \(responses) progress messages")
        } catch {
            logger.warning("seed peer \(request.address) could not fetch \(LogRedaction.url(request.download.url)): \(error)")
        }
    }

    public func close() async { await channels.closeAll() }
}
