import NIOCore
import RPCCore

/// gRPC's length-prefixed message framing: 1 byte compressed flag, 4 bytes big-endian
/// length, then the message.
enum MessageFraming {
    static let prefixLength = 5

    /// The five bytes that go before a message of `length` bytes. Sent as their own chunk,
    /// so a large message is queued as it is, not copied behind its prefix.
    static func prefix(length: Int, compressed: Bool = false) -> [UInt8] {
        let n = UInt32(truncatingIfNeeded: length)
        return [compressed ? 1 : 0, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
    }

    /// Prefix and message in one buffer for the outbound queue: the message's one copy
    /// on its way out.
    static func framed(_ message: [UInt8], compressed: Bool = false) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: prefixLength + message.count)
        buffer.writeBytes(prefix(length: message.count, compressed: compressed))
        buffer.writeBytes(message)
        return buffer
    }

    /// The prefix alone, for a message already in a buffer of its own.
    static func prefixBuffer(length: Int) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: prefixLength)
        buffer.writeBytes(prefix(length: length))
        return buffer
    }
}

/// Turns a stream of DATA bytes into whole messages. A message's bytes are copied once,
/// from the DATA frame into an array of exactly the announced length (so no buffer grows
/// and copies itself while a 4 MiB piece arrives). A message longer than the limit is
/// rejected as soon as its prefix is seen, before anything of it is buffered.
struct MessageDeframer {
    /// Largest message accepted, after decompression too.
    let maxMessageSize: Int
    /// The `grpc-encoding` the peer announced, if any.
    var encoding: String?

    private var prefix: [UInt8] = []
    /// The message being filled once its prefix is known: its flag, length and bytes so far.
    private var current: (compressed: Bool, length: Int, body: [UInt8])?
    private var complete: [(compressed: Bool, body: [UInt8])] = []
    private var head = 0
    /// A bad prefix: every later call reports it, and nothing more is buffered.
    private var failure: RPCError?

    init(maxMessageSize: Int, encoding: String? = nil) {
        self.maxMessageSize = maxMessageSize
        self.encoding = encoding
    }

    /// Bytes received but not yet part of a returned message.
    var bufferedCount: Int {
        prefix.count + (current?.body.count ?? 0) + complete[head...].reduce(0) { $0 + $1.body.count }
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes[...]
        while !rest.isEmpty, failure == nil {
            if var message = current {
                current = nil
                let n = min(rest.count, message.length - message.body.count)
                message.body.append(contentsOf: rest.prefix(n))
                rest = rest.dropFirst(n)
                if message.body.count == message.length {
                    complete.append((message.compressed, message.body))
                } else {
                    current = message
                }
                continue
            }
            let n = min(rest.count, MessageFraming.prefixLength - prefix.count)
            prefix.append(contentsOf: rest.prefix(n))
            rest = rest.dropFirst(n)
            if prefix.count == MessageFraming.prefixLength { startMessage() }
        }
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    private mutating func startMessage() {
        let flag = prefix[0]
        let length = Int(prefix[1]) << 24 | Int(prefix[2]) << 16 | Int(prefix[3]) << 8 | Int(prefix[4])
        prefix.removeAll(keepingCapacity: true)
        if flag > 1 {
            failure = RPCError(code: .internal, message: "invalid compressed flag \(flag) in message prefix")
            return
        }
        if length > maxMessageSize {
            failure = RPCError(code: .resourceExhausted,
                               message: "message of \(length) bytes exceeds the limit of \(maxMessageSize) bytes")
            return
        }
        if length == 0 {
            complete.append((flag == 1, []))
            return
        }
        var body: [UInt8] = []
        body.reserveCapacity(length)
        current = (flag == 1, length, body)
    }

    /// The next complete message, nil when more bytes are needed.
    mutating func next() throws(RPCError) -> [UInt8]? {
        guard head < complete.count else {
            if let failure { throw failure }
            return nil
        }
        let (compressed, body) = complete[head]
        complete[head].body = []
        head += 1
        if head == complete.count {
            complete.removeAll(keepingCapacity: true)
            head = 0
        }
        guard compressed else { return body }
        guard let encoding, encoding != "identity" else {
            throw RPCError(code: .internal, message: "compressed message without grpc-encoding")
        }
        guard encoding == "gzip" || encoding == "deflate" else {
            throw RPCError(code: .unimplemented, message: "unsupported grpc-encoding \(encoding)")
        }
        return try Gzip.decompress(body, gzip: encoding == "gzip", limit: maxMessageSize)
    }
}
