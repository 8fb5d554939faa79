import NIOCore
import RPCCore

/// Bytes waiting to become DATA frames on one stream, and the writers waiting for room.
/// Event-loop confined. Messages stay in the buffers they were written in: a DATA frame's
/// payload leaves as a slice of them, never copied here.
struct OutboundQueue {
    /// Above this many queued bytes a writer suspends until the peer has taken some.
    static let highWatermark = 1 << 20

    private var chunks: [ByteBuffer] = []
    private var head = 0
    private(set) var queuedBytes = 0
    private var waiters: [CheckedContinuation<Void, any Error>] = []

    var isEmpty: Bool { queuedBytes == 0 }

    mutating func append(_ bytes: ByteBuffer) {
        guard bytes.readableBytes > 0 else { return }
        chunks.append(bytes)
        queuedBytes += bytes.readableBytes
    }

    var hasRoom: Bool { queuedBytes < Self.highWatermark }

    mutating func park(_ waiter: CheckedContinuation<Void, any Error>) {
        waiters.append(waiter)
    }

    /// Hands the first `count` queued bytes to `out` as slices of the chunks and drops
    /// them; wakes writers once below the watermark.
    mutating func send(count: Int, to out: OutputAssembler) {
        var written = 0
        while written < count && head < chunks.count {
            let n = min(count - written, chunks[head].readableBytes)
            // Moving the reader index shares the storage; nothing is copied.
            if let slice = chunks[head].readSlice(length: n) { out.append(slice) }
            written += n
            if chunks[head].readableBytes == 0 {
                chunks[head] = ByteBuffer()
                head += 1
            }
        }
        if head == chunks.count {
            chunks.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 32 {
            chunks.removeFirst(head)
            head = 0
        }
        queuedBytes -= written
        if hasRoom && !waiters.isEmpty {
            let ready = waiters
            waiters.removeAll()
            for w in ready { w.resume() }
        }
    }

    /// Fails every waiting writer (the stream is gone) and drops what is queued.
    mutating func fail(_ error: RPCError) {
        chunks.removeAll()
        head = 0
        queuedBytes = 0
        let ready = waiters
        waiters.removeAll()
        for w in ready { w.resume(throwing: error) }
    }
}
