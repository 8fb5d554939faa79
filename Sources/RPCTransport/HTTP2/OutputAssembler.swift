import NIOCore

/// What one drain of an HTTP/2 session writes to the channel, in order: nghttp2's own
/// frames and the DATA frame headers copied into small buffers, DATA payloads as the
/// slices of the messages they come from (so a piece's bytes are not copied again on
/// their way to the socket). Event-loop confined; reused from drain to drain.
final class OutputAssembler {
    /// Slices shorter than this are copied: a write per tiny slice costs more than the copy.
    static let copyBelow = 4 << 10
    /// Room of a fresh buffer for copied bytes. Small, because one starts after every
    /// payload slice to hold the next frame's 9-byte header, and a drain may hold a
    /// thousand of them; it grows when nghttp2 hands over more.
    static let copyBufferSize = 1 << 10

    private let allocator: ByteBufferAllocator
    private var ready: [ByteBuffer] = []
    private var copied: ByteBuffer?

    init(allocator: ByteBufferAllocator) {
        self.allocator = allocator
    }

    var isEmpty: Bool { ready.isEmpty && (copied?.readableBytes ?? 0) == 0 }

    /// Copies bytes that live only for the call (nghttp2's frame buffer).
    func copy(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        if var buffer = copied {
            copied = nil
            buffer.writeBytes(bytes)
            copied = buffer
        } else {
            var buffer = allocator.buffer(capacity: max(Self.copyBufferSize, bytes.count))
            buffer.writeBytes(bytes)
            copied = buffer
        }
    }

    /// Takes a slice of a queued message as it is.
    func append(_ slice: ByteBuffer) {
        guard slice.readableBytes >= Self.copyBelow else {
            slice.withUnsafeReadableBytes { copy($0) }
            return
        }
        closeCopied()
        ready.append(slice)
    }

    /// Everything gathered so far, in order; the assembler starts empty again.
    func take() -> [ByteBuffer] {
        closeCopied()
        defer { ready.removeAll(keepingCapacity: true) }
        return ready
    }

    private func closeCopied() {
        guard let buffer = copied else { return }
        copied = nil
        if buffer.readableBytes > 0 { ready.append(buffer) }
    }
}
