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

    /// Copies up to `buffer.count` bytes out; wakes writers once below the watermark.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var written = 0
        while written < buffer.count && head < chunks.count {
            let chunk = chunks[head]
            let n = min(buffer.count - written, chunk.count - offset)
            chunk.withUnsafeBytes { src in
                guard let dst = buffer.baseAddress, let s = src.baseAddress else { return }
                (dst + written).copyMemory(from: s + offset, byteCount: n)
            }
            written += n
            offset += n
            if offset == chunk.count {
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
        return written
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
