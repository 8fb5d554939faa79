import COpenSSL
import NIOCore

/// TLS over OpenSSL with memory BIOs: ciphertext flows through the channel, plaintext
/// up and down the pipeline. Writes made before the handshake completes are held back.
final class OpenSSLHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let tls: TLSContext
    private let ssl: OpaquePointer
    /// Ciphertext from the network, read by OpenSSL.
    private let networkIn: OpaquePointer
    /// Ciphertext OpenSSL produced, to write to the network.
    private let networkOut: OpaquePointer
    private let isServer: Bool
    private var handshakeDone = false
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    /// Plaintext written since the last flush, encrypted together: the HTTP/2 layer writes
    /// each DATA frame as a 9-byte header and a payload slice, and one `SSL_write` each
    /// would make a TLS record (and a socket write) of nine bytes per frame.
    private var staged: ByteBuffer?
    private var stagedPromises: [EventLoopPromise<Void>] = []
    /// Staged bytes past which they are encrypted without waiting for the flush.
    static let stageLimit = 256 << 10
    private var failed = false
    private var readScratch = [UInt8](repeating: 0, count: 32 << 10)

    init(context tls: TLSContext, server: Bool, serverName: String?) throws {
        guard let ssl = SSL_new(tls.ctx) else { throw TLSError("SSL_new failed") }
        guard let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError("BIO_new failed")
        }
        SSL_set_bio(ssl, rbio, wbio)
        self.tls = tls
        self.ssl = ssl
        self.networkIn = rbio
        self.networkOut = wbio
        self.isServer = server
        if server {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            var alpn: [UInt8] = [2, UInt8(ascii: "h"), UInt8(ascii: "2")]
            SSL_set_alpn_protos(ssl, &alpn, UInt32(alpn.count))
            let name = tls.configuration.serverNameOverride ?? serverName
            if let name, !name.isEmpty {
                if !isIPAddress(name) { _ = SSL_set_tlsext_host_name_shim(ssl, name) }
                if !tls.configuration.insecureSkipVerify {
                    if isIPAddress(name) { X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) }
                    else { SSL_set1_host(ssl, name) }
                }
            }
        }
    }

    deinit {
        SSL_free(ssl)
    }

    func channelActive(context: ChannelHandlerContext) {
        if !isServer { advanceHandshake(context) }
        // Upper handlers see the channel active only once TLS is up.
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive && !isServer { advanceHandshake(context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { bytes in
            _ = BIO_write(networkIn, bytes.baseAddress, Int32(bytes.count))
        }
        buffer.moveReaderIndex(to: buffer.writerIndex)
        if !handshakeDone {
            advanceHandshake(context)
            if !handshakeDone { return }
        }
        readPlaintext(context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    private func advanceHandshake(_ context: ChannelHandlerContext) {
        guard !failed else { return }
        let rc = SSL_do_handshake(ssl)
        flushNetworkOut(context)
        if rc == 1 {
            handshakeDone = true
            var proto: UnsafePointer<UInt8>?
            var len: UInt32 = 0
            SSL_get0_alpn_selected(ssl, &proto, &len)
            if len != 2 {
                fail(context, TLSError("peer did not negotiate ALPN h2"))
                return
            }
            context.fireChannelActive()
            let writes = pendingWrites
            pendingWrites.removeAll()
            for (buffer, promise) in writes { stage(context, buffer, promise) }
            encryptStaged(context)
            context.flush()
            readPlaintext(context)
            return
        }
        let err = SSL_get_error(ssl, rc)
        if err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE {
            fail(context, TLSError("TLS handshake failed"))
        }
    }

    private func readPlaintext(_ context: ChannelHandlerContext) {
        while true {
            let n = readScratch.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if n > 0 {
                var out = context.channel.allocator.buffer(capacity: Int(n))
                _ = readScratch.withUnsafeBytes { out.writeBytes(UnsafeRawBufferPointer(rebasing: $0[0..<Int(n)])) }
                context.fireChannelRead(wrapInboundOut(out))
                continue
            }
            let err = SSL_get_error(ssl, n)
            if err == SSL_ERROR_ZERO_RETURN {
                context.close(promise: nil)
            } else if err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE {
                fail(context, TLSError("TLS read failed"))
            }
            flushNetworkOut(context)
            return
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        guard handshakeDone else {
            pendingWrites.append((buffer, promise))
            return
        }
        stage(context, buffer, promise)
    }

    private func stage(_ context: ChannelHandlerContext, _ buffer: ByteBuffer, _ promise: EventLoopPromise<Void>?) {
        var plain = staged ?? context.channel.allocator.buffer(capacity: max(16 << 10, buffer.readableBytes))
        staged = nil
        plain.writeImmutableBuffer(buffer)
        staged = plain
        if let promise { stagedPromises.append(promise) }
        if plain.readableBytes >= Self.stageLimit { encryptStaged(context) }
    }

    /// Encrypts what is staged and writes it out; the writes' promises complete with it.
    private func encryptStaged(_ context: ChannelHandlerContext) {
        guard let plain = staged else { return }
        staged = nil
        let promises = stagedPromises
        stagedPromises = []
        var combined: EventLoopPromise<Void>?
        if !promises.isEmpty {
            let promise = context.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenComplete { result in
                for p in promises { p.completeWith(result) }
            }
            combined = promise
        }
        encrypt(context, plain, combined)
    }

    private func encrypt(_ context: ChannelHandlerContext, _ buffer: ByteBuffer, _ promise: EventLoopPromise<Void>?) {
        let ok = buffer.withUnsafeReadableBytes { bytes -> Bool in
            var offset = 0
            while offset < bytes.count {
                let n = SSL_write(ssl, bytes.baseAddress.map { $0 + offset }, Int32(min(bytes.count - offset, 1 << 20)))
                if n <= 0 { return false }
                offset += Int(n)
            }
            return true
        }
        guard ok else {
            promise?.fail(TLSError("TLS write failed"))
            fail(context, TLSError("TLS write failed"))
            return
        }
        flushNetworkOut(context, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        encryptStaged(context)
        context.flush()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if handshakeDone && !failed {
            encryptStaged(context)
            SSL_shutdown(ssl)
            flushNetworkOut(context)
            context.flush()
        }
        for (_, p) in pendingWrites { p?.fail(ChannelError.ioOnClosedChannel) }
        pendingWrites.removeAll()
        staged = nil
        for p in stagedPromises { p.fail(ChannelError.ioOnClosedChannel) }
        stagedPromises.removeAll()
        context.close(mode: mode, promise: promise)
    }

    private func flushNetworkOut(_ context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        let pending = Int(BIO_ctrl_pending(networkOut))
        guard pending > 0 else {
            promise?.succeed(())
            return
        }
        var out = context.channel.allocator.buffer(capacity: pending)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { ptr in
            Int(BIO_read(networkOut, ptr.baseAddress, Int32(pending)))
        }
        context.writeAndFlush(wrapOutboundOut(out), promise: promise)
    }

    private func fail(_ context: ChannelHandlerContext, _ error: TLSError) {
        guard !failed else { return }
        failed = true
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}

private func isIPAddress(_ s: String) -> Bool {
    s.contains(":") || s.split(separator: ".").count == 4 && s.allSatisfy { $0.isNumber || $0 == "." }
}
