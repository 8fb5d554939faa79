import NIOCore
import RPCCore
import ProtoCore

/// One client-side call on the event loop: request queue, response messages, status.
final class ClientStream {
    let id: Int32
    private unowned let session: HTTP2Session
    private var deframer: MessageDeframer
    let inbound = InboundBuffer<[UInt8]>(highWatermark: 8, lowWatermark: 2)
    private var outbound = OutboundQueue()
    private var sendFinished = false
    private var headersReceived = false
    private var initialMetadata: Metadata?
    private var metadataWaiters: [CheckedContinuation<Metadata, any Error>] = []
    private(set) var status: (RPCStatus, Metadata)?
    private var failure: RPCError?
    private var statusWaiters: [CheckedContinuation<(RPCStatus, Metadata), Never>] = []
    private var unconsumed = 0
    private var readerPaused = false
    var timeoutTask: Scheduled<Void>?

    init(id: Int32, session: HTTP2Session, maxReceiveMessageSize: Int) {
        self.id = id
        self.session = session
        self.deframer = MessageDeframer(maxMessageSize: maxReceiveMessageSize)
    }

    // MARK: - Outbound

    func send(prefix: [UInt8], _ body: [UInt8], continuation: CheckedContinuation<Void, any Error>) {
        if let failure {
            continuation.resume(throwing: failure)
            return
        }
        if status != nil || sendFinished {
            // The server already answered; gRPC reports the status, not the send.
            continuation.resume()
            return
        }
        outbound.append(prefix)
        outbound.append(body)
        session.resumeData(streamID: id)
        if outbound.hasRoom { continuation.resume() } else { outbound.park(continuation) }
    }

    func finishSending() {
        guard !sendFinished else { return }
        sendFinished = true
        session.resumeData(streamID: id)
    }

    func read(max: Int) -> HTTP2DataRead {
        let n = min(max, outbound.queuedBytes)
        if n == outbound.queuedBytes && sendFinished { return .end(n, trailers: nil) }
        return n > 0 ? .bytes(n) : .deferred
    }

    func send(count: Int, to sink: (UnsafeRawBufferPointer) -> Void) { outbound.send(count: count, to: sink) }

    // MARK: - Inbound

    func headers(_ headers: [(String, String)], endStream: Bool) {
        var httpStatus = 0
        var grpcStatus: String?
        var grpcMessage = ""
        var details: [UInt8]?
        var contentType = ""
        for (name, value) in headers {
            switch name {
            case ":status": httpStatus = Int(value) ?? 0
            case "grpc-status": grpcStatus = value
            case "grpc-message": grpcMessage = PercentEncoding.decode(value)
            case "grpc-status-details-bin": details = Base64.decode(value)
            case "content-type": contentType = value
            case "grpc-encoding": deframer.encoding = value
            default: break
            }
        }
        let metadata = MetadataCoding.metadata(from: headers)
        if !headersReceived {
            headersReceived = true
            if httpStatus != 200 {
                complete(RPCError(code: StatusCode.fromHTTPStatus(httpStatus),
                                  message: "HTTP status \(httpStatus)"), trailers: metadata)
                return
            }
            if grpcStatus == nil && !contentType.hasPrefix("application/grpc") {
                complete(RPCError(code: .unknown, message: "unexpected content-type \(contentType)"), trailers: metadata)
                return
            }
            if grpcStatus == nil {
                initialMetadata = metadata
                let waiters = metadataWaiters
                metadataWaiters.removeAll()
                for w in waiters { w.resume(returning: metadata) }
                if !endStream { return }
            } else {
                // Trailers-only: the headers are also the initial metadata (empty).
                resolveMetadata(Metadata())
            }
        }
        guard let grpcStatus, let code = Int(grpcStatus) else {
            complete(RPCError(code: .internal, message: "response ended without grpc-status"), trailers: metadata)
            return
        }
        if code == 0 {
            complete(nil, trailers: metadata)
        } else {
            complete(RPCError(code: StatusCode(rawValue: code), message: grpcMessage, details: details, metadata: metadata),
                     trailers: metadata)
        }
    }

    func data(_ bytes: UnsafeRawBufferPointer) {
        guard status == nil else {
            session.consumeStream(streamID: id, count: bytes.count)
            return
        }
        deframer.append(bytes)
        unconsumed += bytes.count
        do {
            while let message = try deframer.next() {
                if !inbound.yield(message) { readerPaused = true }
            }
        } catch {
            complete(error, trailers: Metadata())
            session.resetStream(id, errorCode: 8)
        }
        if !readerPaused {
            session.consumeStream(streamID: id, count: unconsumed)
            unconsumed = 0
        }
    }

    func resumeReading() {
        readerPaused = false
        session.consumeStream(streamID: id, count: unconsumed)
        unconsumed = 0
    }

    /// The HTTP/2 stream closed; without a status that is a transport failure.
    func closed(errorCode: UInt32) {
        guard status == nil else { return }
        let error: RPCError
        switch errorCode {
        case 0: error = RPCError(code: .internal, message: "stream closed without a status")
        case 7: error = RPCError(code: .unavailable, message: "stream refused by server")
        case 8: error = RPCError(code: .cancelled, message: "stream cancelled by server")
        case 11: error = RPCError(code: .resourceExhausted, message: "server says: enhance your calm")
        case 12: error = RPCError(code: .permissionDenied, message: "server requires stronger TLS")
        default: error = RPCError(code: .internal, message: "stream reset with HTTP/2 error \(errorCode)")
        }
        complete(error, trailers: Metadata())
    }

    /// Records the final status once; every waiter learns it.
    func complete(_ error: RPCError?, trailers: Metadata) {
        guard status == nil else { return }
        timeoutTask?.cancel()
        let rpcStatus = RPCStatus(code: error?.code ?? .ok, message: error?.message ?? "")
        status = (rpcStatus, trailers)
        failure = error ?? RPCError(code: .ok, message: "")
        inbound.finish(error)
        outbound.fail(error ?? RPCError(code: .ok, message: "call finished"))
        resolveMetadata(nil, error: error)
        let waiters = statusWaiters
        statusWaiters.removeAll()
        for w in waiters { w.resume(returning: (rpcStatus, trailers)) }
    }

    private func resolveMetadata(_ metadata: Metadata?, error: RPCError? = nil) {
        if initialMetadata == nil {
            if let metadata {
                initialMetadata = metadata
            } else if error == nil {
                initialMetadata = Metadata()
            }
        }
        let waiters = metadataWaiters
        metadataWaiters.removeAll()
        for w in waiters {
            if let m = initialMetadata { w.resume(returning: m) } else {
                w.resume(throwing: error ?? RPCError(code: .internal, message: "no response headers"))
            }
        }
    }

    func awaitInitialMetadata(_ cont: CheckedContinuation<Metadata, any Error>) {
        if let initialMetadata { cont.resume(returning: initialMetadata); return }
        if status != nil {
            cont.resume(throwing: failure ?? RPCError(code: .internal, message: "no response headers"))
            return
        }
        metadataWaiters.append(cont)
    }

    func awaitStatus(_ cont: CheckedContinuation<(RPCStatus, Metadata), Never>) {
        if let status { cont.resume(returning: status) } else { statusWaiters.append(cont) }
    }

    func cancel(_ error: RPCError) {
        guard status == nil else { return }
        complete(error, trailers: Metadata())
        session.resetStream(id, errorCode: 8)
    }
}
