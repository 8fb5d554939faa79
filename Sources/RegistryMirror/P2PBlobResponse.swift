import DragonflyCommon
import GeneratedAPI
import HTTPServing
import MirrorRouting
import NIOHTTP1
import PeerDaemon

/// A blob served from a P2P task: the response starts once the task's length is known and
/// pieces are written in order as they land, so the first byte leaves long before the last
/// piece arrives. The final piece is held back until the task has passed its digest check:
/// a blob that fails it ends as a broken connection, never as a complete wrong body. A
/// client's `Range` travels with the download's request headers; the daemon fetches only
/// the pieces it covers (and, with `prefetch`, the rest afterwards) and says which range
/// it serves in its started response. A range is not the whole blob, so it has no digest
/// to hold back for.
actor P2PBlobResponse {
    private let daemon: Daemon
    private let writer: HTTPResponseWriter
    private let extraHeaders: HTTPHeaders

    private var taskID = ""
    private var pieces: [UInt32: (offset: UInt64, length: UInt64)] = [:]
    private var landed: Set<UInt32> = []
    /// Next piece to write, and the last one the response needs.
    private var next: UInt32 = 0
    private var last: UInt32 = 0
    private var span = BlobSpan(contentLength: 0, served: nil)
    private(set) var started = false

    init(daemon: Daemon, writer: HTTPResponseWriter, extraHeaders: HTTPHeaders) {
        self.daemon = daemon
        self.writer = writer
        self.extraHeaders = extraHeaders
    }

    /// Runs the download and streams it. Throws before anything was written when the task
    /// could not start (the caller can still answer another way), or after, when it failed.
    func serve(_ download: Common_V2_Download) async throws {
        do {
            try await daemon.download(download, caller: .mirror, started: { response, taskID, _ in
                try await self.begin(response, taskID: taskID)
            }, piece: { piece in
                try await self.land(piece.number)
            })
        } catch let unsatisfiable as UnsatisfiableRange {
            try await answerUnsatisfiable(contentLength: unsatisfiable.contentLength)
            return
        }
        guard started else { return }
        try await flush(includingLast: true)
        let expected = Int(clamping: span.bodyLength)
        guard writer.bodyBytes == expected else {
            throw MirrorRefusal(status: 500, message: "wrote \(writer.bodyBytes) of \(expected) bytes (pieces \(next)...\(last), landed \(landed.sorted()))")
        }
        // A client that has every byte may hang up before the end is written; the blob
        // was still served whole.
        try? await writer.end()
    }

    private func begin(_ r: Dfdaemon_V2_DownloadTaskStartedResponse, taskID: String) async throws {
        self.taskID = taskID
        for p in r.pieces { pieces[p.number] = (p.offset, p.length) }
        let length = r.contentLength
        var headers = extraHeaders
        headers.replaceOrAdd(name: "X-Dragonfly-Task-ID", value: taskID)
        headers.replaceOrAdd(name: "Accept-Ranges", value: "bytes")
        let upstreamType = r.responseHeader.first { $0.key.lowercased() == "content-type" }?.value
        headers.replaceOrAdd(name: "Content-Type", value: upstreamType ?? "application/octet-stream")
        span = BlobSpan(contentLength: length, served: r.range.map { ($0.start, $0.length) })
        if let contentRange = span.contentRange { headers.replaceOrAdd(name: "Content-Range", value: contentRange) }
        headers.replaceOrAdd(name: "Content-Length", value: String(span.bodyLength))
        // The daemon lists the pieces the response needs, in order.
        let numbers = r.pieces.map(\.number).sorted()
        next = numbers.first ?? 0
        last = numbers.last ?? 0
        started = true
        try await writer.writeHead(span.isPartial ? .partialContent : .ok, headers: headers)
    }

    /// 416, before anything of the task was fetched.
    private func answerUnsatisfiable(contentLength: UInt64) async throws {
        var headers = extraHeaders
        headers.replaceOrAdd(name: "Content-Range", value: "bytes */\(contentLength)")
        headers.replaceOrAdd(name: "Content-Length", value: "0")
        started = true
        span = BlobSpan(contentLength: 0, served: nil)
        try await writer.writeHead(.rangeNotSatisfiable, headers: headers)
        try await writer.end()
    }

    private func land(_ number: UInt32) async throws {
        landed.insert(number)
        try await flush(includingLast: false)
    }

    /// Writes every landed piece in order from `next`, stopping before the last one unless
    /// the task is verified.
    private func flush(includingLast: Bool) async throws {
        guard started, span.bodyLength > 0 else { return }
        while next <= last, landed.contains(next) || includingLast, next < last || includingLast {
            guard let piece = pieces[next] else { break }
            // The task's digest was checked when it completed; the client checks it again.
            let bytes = try await daemon.store.readPiece(taskID: taskID, number: next, verifying: false)
            if let share = span.slice(ofPieceAt: piece.offset, length: piece.length) {
                guard share.upperBound <= bytes.count else {
                    throw MirrorRefusal(status: 500, message: "piece \(next) has \(bytes.count) bytes, not \(piece.length)")
                }
                try await writer.writeBody(bytes[share])
            }
            next += 1
        }
    }
}
