import RPCCore

/// Bytes waiting to become DATA frames on one stream, and the writers waiting for room.
/// Event-loop confined.
struct OutboundQueue {
    /// Above this many queued bytes a writer suspends until the peer has taken some.
    static let highWatermark = 1 << 20

    private var chunks: [[UInt8]] = []
    private var head = 0
    private var offset = 0
    private(set) var queuedBytes = 0
    private var waiters: [CheckedContinuation<Void, any Error>] = []

    var isEmpty: Bool { queuedBytes == 0 }

    mutating func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        chunks.append(bytes)
        queuedBytes += bytes.count
    }

    var hasRoom: Bool { queuedBytes < Self.highWatermark }

    mutating func park(_ waiter: CheckedContinuation<Void, any Error>) {
        waiters.append(waiter)
    }

    /// Hands the first `count` queued bytes to `sink` from the chunks themselves (no copy
    /// here) and drops them; wakes writers once below the watermark.
    mutating func send(count: Int, to sink: (UnsafeRawBufferPointer) -> Void) {
        var written = 0
        while written < count && head < chunks.count {
            let n = min(count - written, chunks[head].count - offset)
            chunks[head].withUnsafeBytes { src in sink(UnsafeRawBufferPointer(rebasing: src[offset..<(offset + n)])) }
            written += n
            offset += n
            if offset == chunks[head].count {
                head += 1
                offset = 0
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
        offset = 0
        queuedBytes = 0
        let ready = waiters
        waiters.removeAll()
        for w in ready { w.resume(throwing: error) }
    }
}
