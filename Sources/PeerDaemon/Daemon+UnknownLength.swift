import AsyncHTTPClient
import DragonflyCommon
import Foundation
import GeneratedAPI
import Locking
import NIOCore
import NIOPosix
import PeerStorage
import RPCCore
#if canImport(Glibc)
import Glibc
#endif

/// Tasks whose origin body is being spooled now, so a second request waits for the first.
final class SpoolRegistry: Sendable {
    private let running = Locked<Set<String>>([])
    func claim(_ taskID: String) -> Bool { running.withLock { $0.insert(taskID).inserted } }
    func release(_ taskID: String) { running.withLock { _ = $0.remove(taskID) } }
}

extension Daemon {
    /// An origin that tells no length (a chunked body, and no Content-Range total): its one
    /// response is read to the end into a spool file beside the store, bounded by
    /// `download.maxUnknownContentLength`; only then is the length known, and the spool is
    /// cut into pieces, stored (each with its digest) and the task marked complete. Peers
    /// cannot share such a task while it is read (no piece exists before the end), so each
    /// peer reads it from the origin; a truncated body is indistinguishable from a short
    /// one here, which is why the caller's `--digest` matters most for these origins.
    func fetchWithoutLength(_ request: Common_V2_Download, taskID: String, headers: [String: String]) async throws {
        guard !request.disableBackToSource else {
            throw RPCError(code: .unavailable, message: "the origin gives no length, so only it can serve this, and back-to-source is disabled")
        }
        guard spools.claim(taskID) else {
            // Another request is reading the same body: wait for its task to complete.
            for _ in 0..<720 {
                let seen = store.changes.version(taskID)
                if let m = try? await store.metadata(taskID), m.finished { return }
                if spools.claim(taskID) { spools.release(taskID); return }
                await store.changes.wait(taskID, after: seen, timeout: .seconds(5))
                try Task.checkCancellation()
            }
            throw RPCError(code: .deadlineExceeded, message: "another download of this length-less origin did not finish within an hour")
        }
        defer {
            spools.release(taskID)
            store.changes.signal(taskID)
        }
        let spoolDirectory = store.directory.appendingPathComponent("spool")
        try? FileManager.default.createDirectory(at: spoolDirectory, withIntermediateDirectories: true)
        let spool = spoolDirectory.appendingPathComponent("\(taskID).\(UInt32.random(in: 0...UInt32.max))")
        defer { unlink(spool.path) }
        let began = ContinuousClock.now
        let (length, responseHeaders) = try await spoolBody(request.url, headers: headers, into: spool.path)
        let layout: PieceLayout
        do {
            layout = try PieceLayout.checked(contentLength: length, requestedPieceLength: request.pieceLength ?? config.pieceLength)
        } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
        do {
            _ = try await store.open(taskID: taskID, url: request.url, contentLength: layout.contentLength, pieceLength: layout.pieceLength)
        } catch {
            throw RPCError(code: .internal, message: "\(error)")
        }
        var log = logger
        log[metadataKey: "task_id"] = "\(taskID)"
        log.info("origin gave no length; read \(length) bytes to the end, storing them as \(layout.pieceCount) pieces")
        let plan = DownloadPlan(taskID: taskID, peerID: PeerIdentity.peerID(ip: config.ip, hostname: config.hostname, seed: config.seedPeer),
                                download: request, layout: layout, headers: headers, log: log,
                                limit: TokenBucket(bytesPerSecond: 0),
                                validators: OriginValidators(headers: responseHeaders, contentLength: length))
        let path = spool.path
        for piece in layout.pieces() {
            let bytes = try await NIOThreadPool.singleton.runIfActive { try Self.readSpool(path, offset: piece.offset, length: piece.length) }
            try await keepOriginPiece(plan, piece, bytes, since: began, report: { _ in }, onPiece: nil)
        }
        try await markFinished(taskID)
    }

    /// Reads the whole body into `path`; its length and the response's headers.
    private func spoolBody(_ url: String, headers: [String: String], into path: String) async throws -> (UInt64, [String: String]) {
        let response: HTTPClientResponse
        do {
            response = try await origin.getWhole(url, headers: headers, expecting: OriginValidators())
        } catch let error as OriginError {
            throw error.refused ? RPCError(code: .permissionDenied, message: error.message) : backendError(error)
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RPCError(code: .internal, message: "cannot create a spool file: \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        let limit = config.maxUnknownContentLength
        var total: UInt64 = 0
        do {
            for try await chunk in response.body {
                total += UInt64(chunk.readableBytes)
                guard total <= limit else {
                    throw RPCError(code: .resourceExhausted, message: "the origin gave no length and sent more than download.maxUnknownContentLength (\(limit) bytes)")
                }
                try await backToSourceLimit.take(chunk.readableBytes)
                try await downloadLimit.take(chunk.readableBytes)
                try await NIOThreadPool.singleton.runIfActive { try Self.append(chunk, to: fd) }
            }
        } catch let error as RPCError {
            throw error
        } catch {
            throw backendError(OriginError(message: "origin body failed after \(total) bytes: \(error)"))
        }
        var flat: [String: String] = [:]
        for header in response.headers { flat[header.name] = header.value }
        return (total, flat)
    }

    private static func append(_ chunk: ByteBuffer, to fd: Int32) throws(RPCError) {
        var failure: Int32 = 0
        chunk.withUnsafeReadableBytes { buffer in
            var done = 0
            while done < buffer.count, let base = buffer.baseAddress {
                let n = write(fd, base + done, buffer.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { failure = errno; return }
                done += n
            }
        }
        if failure == ENOSPC { throw RPCError(code: .resourceExhausted, message: "no space left for the spool of a length-less origin") }
        if failure != 0 { throw RPCError(code: .internal, message: "spool write failed: \(String(cString: strerror(failure)))") }
    }

    private static func readSpool(_ path: String, offset: UInt64, length: UInt64) throws(RPCError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RPCError(code: .internal, message: "cannot reopen the spool file") }
        defer { Glibc.close(fd) }
        // Filled straight from the file: no zeroed buffer first.
        var failed = false
        let bytes = [UInt8](unsafeUninitializedCapacity: Int(length)) { buffer, count in
            count = 0
            guard let base = buffer.baseAddress else { return }
            while count < buffer.count {
                let n = pread(fd, base + count, buffer.count - count, off_t(offset) + off_t(count))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { failed = true; return }
                count += n
            }
        }
        if failed { throw RPCError(code: .internal, message: "the spool file ended early") }
        return bytes
    }
}
