import RPCCore

/// gRPC's length-prefixed message framing: 1 byte compressed flag, 4 bytes big-endian
/// length, then the message.
enum MessageFraming {
    static let prefixLength = 5

    static func frame(_ message: [UInt8], compressed: Bool = false) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(message.count + prefixLength)
        out.append(compressed ? 1 : 0)
        let n = UInt32(truncatingIfNeeded: message.count)
        out.append(UInt8(n >> 24)); out.append(UInt8((n >> 16) & 0xff))
        out.append(UInt8((n >> 8) & 0xff)); out.append(UInt8(n & 0xff))
        out.append(contentsOf: message)
        return out
    }
}

/// Turns a stream of DATA bytes into whole messages. Rejects a message longer than the
/// limit as soon as its prefix is seen, before buffering it.
struct MessageDeframer {
    /// Largest message accepted, after decompression too.
    let maxMessageSize: Int
    /// The `grpc-encoding` the peer announced, if any.
    var encoding: String?

    private var buffer: [UInt8] = []
    private var start = 0

    init(maxMessageSize: Int, encoding: String? = nil) {
        self.maxMessageSize = maxMessageSize
        self.encoding = encoding
    }

    /// Bytes received but not yet part of a returned message.
    var bufferedCount: Int { buffer.count - start }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// The next complete message, nil when more bytes are needed.
    mutating func next() throws(RPCError) -> [UInt8]? {
        guard bufferedCount >= MessageFraming.prefixLength else { return nil }
        let flag = buffer[start]
        let length = Int(buffer[start + 1]) << 24 | Int(buffer[start + 2]) << 16
            | Int(buffer[start + 3]) << 8 | Int(buffer[start + 4])
        if flag > 1 {
            throw RPCError(code: .internal, message: "invalid compressed flag \(flag) in message prefix")
        }
        if length > maxMessageSize {
            throw RPCError(code: .resourceExhausted,
                           message: "message of \(length) bytes exceeds the limit of \(maxMessageSize) bytes")
        }
        guard bufferedCount >= MessageFraming.prefixLength + length else { return nil }
        let bodyStart = start + MessageFraming.prefixLength
        let body = Array(buffer[bodyStart..<(bodyStart + length)])
        start = bodyStart + length
        if start > 1 << 16 && start * 2 > buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
        guard flag == 1 else { return body }
        guard let encoding, encoding != "identity" else {
            throw RPCError(code: .internal, message: "compressed message without grpc-encoding")
        }
        guard encoding == "gzip" || encoding == "deflate" else {
            throw RPCError(code: .unimplemented, message: "unsupported grpc-encoding \(encoding)")
        }
        return try Gzip.decompress(body, gzip: encoding == "gzip", limit: maxMessageSize)
    }
}
