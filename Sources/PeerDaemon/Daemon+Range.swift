import DragonflyCommon
import Foundation
import GeneratedAPI
import RPCCore

/// A range that starts past the task's end (or is empty). In-process callers (the mirror)
/// answer 416 with the length; over gRPC it is FAILED_PRECONDITION, as upstream's dfdaemon.
public struct UnsatisfiableRange: Error, CustomStringConvertible {
    public let contentLength: UInt64
    public let asked: String
    public var description: String { "range \(asked) is outside the task's \(contentLength) bytes" }
}

extension Daemon {
    /// The bytes a download asks for: `Download.range`, else a `Range: bytes=…` request
    /// header (read once the task's length is known, as upstream's dfdaemon does); nil for
    /// the whole task. A header we answer whole (several ranges, other units) is nil too.
    static func requestedRange(_ request: Common_V2_Download, contentLength: UInt64) throws(UnsatisfiableRange) -> ByteRange? {
        if let r = request.range {
            let asked = "start \(r.start) length \(r.length)"
            guard r.length > 0, r.start < contentLength else { throw UnsatisfiableRange(contentLength: contentLength, asked: asked) }
            return ByteRange(first: r.start, last: r.start + min(r.length, contentLength - r.start) - 1)
        }
        let header = request.requestHeader.first { $0.key.lowercased() == "range" }?.value
        switch ByteRange.parse(header, length: contentLength) {
        case .whole: return nil
        case .range(let r): return r
        case .unsatisfiable: throw UnsatisfiableRange(contentLength: contentLength, asked: header ?? "")
        }
    }

    /// `Download.prefetch`: once a range is served, the rest of the task is fetched in the
    /// background, so the next range is local. It waits for the range's own fetch to end
    /// (one fetch per task at a time), for at most a few minutes.
    func prefetchRest(of plan: DownloadPlan, after range: ByteRange) {
        var whole = plan
        whole.range = nil
        whole.download.range = nil
        whole.download.isPrefetch = true
        whole.download.requestHeader = plan.headers
        let seed = config.seedPeer
        whole.peerID = PeerIdentity.peerID(ip: config.ip, hostname: config.hostname, seed: seed)
        let changes = store.changes
        Task {
            for _ in 0..<60 {
                let seen = changes.version(plan.taskID)
                if let job = sharedFetch(whole, keepWithoutWaiters: true) {
                    whole.log.info("prefetching the rest of the task after range \(range.first)-\(range.last)")
                    job.leave()
                    return
                }
                await changes.wait(plan.taskID, after: seen, timeout: .seconds(5))
            }
            whole.log.warning("prefetch not started: another fetch of the task kept running")
        }
    }
}
