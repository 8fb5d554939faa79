import NIOCore

/// Looks at the first bytes of a plaintext connection: the HTTP/2 client preface means
/// gRPC, anything else is handed to another protocol (an HTTP/1.1 server on the same
/// port). Removes itself once it has decided, replaying what it buffered.
final class PrefaceSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private var buffered: ByteBuffer?
    private let onHTTP2: (ChannelHandlerContext) throws -> Void
    private let onOther: (ChannelHandlerContext) throws -> Void
    /// A client that has not shown which protocol it speaks by then is dropped.
    private let timeout: Duration?
    private var deadline: Scheduled<Void>?

    init(onHTTP2: @escaping (ChannelHandlerContext) throws -> Void,
         onOther: @escaping (ChannelHandlerContext) throws -> Void,
         timeout: Duration? = nil) {
        self.onHTTP2 = onHTTP2
        self.onOther = onOther
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard let timeout else { return }
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout.timeAmount) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered == nil { buffered = incoming } else { buffered?.writeBuffer(&incoming) }
        guard let bytes = buffered else { return }
        let n = min(bytes.readableBytes, Self.preface.count)
        let head = bytes.getBytes(at: bytes.readerIndex, length: n) ?? []
        let isPrefix = head == Array(Self.preface.prefix(n))
        // Undecided until we have the whole preface or a byte that rules it out.
        if isPrefix && n < Self.preface.count { return }
        do {
            if isPrefix { try onHTTP2(context) } else { try onOther(context) }
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        let replay = bytes
        buffered = nil
        // Hand over what was read before leaving the pipeline; the context is dead after.
        context.fireChannelRead(wrapInboundOut(replay))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
