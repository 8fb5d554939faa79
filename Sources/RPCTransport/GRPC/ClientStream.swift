import NIOCore
import RPCCore
import ProtoCore

/// One client-side call on the event loop: request queue, response messages, status.
final class ClientStream {
    let id: Int32
    private unowned let session: HTTP2Session
    private var reader: PacedDeframer
    let inbound = InboundBuffer<[UInt8]>(highWatermark: 8, lowWatermark: 2, highWaterBytes: InboundLimits.highWaterBytes,
                                         weight: { $0.count })
    private var outbound = OutboundQueue()
    /// What may happen next on this call (`ClientCallState` holds the rules).
    private var call = ClientCallState()
    private var initialMetadata: Metadata?
    private var metadataWaiters: [CheckedContinuation<Metadata, any Error>] = []
    private(set) var status: (RPCStatus, Metadata)?
    private var statusWaiters: [CheckedContinuation<(RPCStatus, Metadata), Never>] = []
    /// How the call ended, kept until the reader has had the messages before the end.
    private var endOfResponses: RPCError??
    var timeoutTask: Scheduled<Void>?

    init(id: Int32, session: HTTP2Session, maxReceiveMessageSize: Int) {
        self.id = id
        self.session = session
        self.reader = PacedDeframer(MessageDeframer(maxMessageSize: maxReceiveMessageSize), deliver: inbound.yield)
    }

    // MARK: - Outbound

    func send(_ framed: ByteBuffer, continuation: CheckedContinuation<Void, any Error>) {
        switch call.send() {
        case .fail(let error):
            continuation.resume(throwing: error)
        case .dropSilently:
            continuation.resume()
        case .queue:
            outbound.append(framed)
            session.resumeData(streamID: id)
            if outbound.hasRoom { continuation.resume() } else { outbound.park(continuation) }
        }
    }

    func finishSending() {
        if call.finishSending() { session.resumeData(streamID: id) }
    }

    func read(max: Int) -> HTTP2DataRead {
        let n = min(max, outbound.queuedBytes)
        if n == outbound.queuedBytes && call.sendFinished { return .end(n, trailers: nil) }
        return n > 0 ? .bytes(n) : .deferred
    }

    func send(count: Int, to out: OutputAssembler) { outbound.send(count: count, to: out) }

    // MARK: - Inbound

    func headers(_ headers: [(String, String)], endStream: Bool) {
        perform(call.headersReceived(headers, endStream: endStream))
    }

    func data(_ bytes: UnsafeRawBufferPointer) {
        guard call.dataReceived() == .deliver else {
            session.consumeStream(streamID: id, count: bytes.count)
            return
        }
        apply(reader.receive(bytes))
    }

    func resumeReading() {
        apply(reader.resume())
    }

    private func apply(_ step: PacedDeframer.Step) {
        switch step {
        case .consumed(let count):
            if count > 0 { session.consumeStream(streamID: id, count: count) }
        case .ended(let count, _):
            // Bytes after the last whole message, once the status is in, are dropped as before.
            if count > 0 { session.consumeStream(streamID: id, count: count) }
            if let end = endOfResponses { inbound.finish(end) }
        case .failed(let error):
            perform(call.messageUnreadable(error))
        }
    }

    /// The HTTP/2 stream closed; without a status that is a transport failure.
    func closed(errorCode: UInt32) {
        perform(call.streamClosed(errorCode: errorCode))
    }

    /// The connection is gone, or going away before this call could begin.
    func connectionLost(_ error: RPCError) {
        perform(call.connectionLost(error))
    }

    func cancel(_ error: RPCError) {
        perform(call.cancel(error))
    }

    private func perform(_ actions: [ClientCallState.Action]) {
        for action in actions {
            switch action {
            case .useEncoding(let encoding): reader.deframer.encoding = encoding
            case .initialMetadata(let metadata): resolveMetadata(metadata)
            case .complete(let error, let trailers): complete(error, trailers: trailers)
            case .reset(let code): session.resetStream(id, errorCode: code.rawValue)
            }
        }
    }

    /// Records the final status; every waiter learns it.
    private func complete(_ error: RPCError?, trailers: Metadata) {
        timeoutTask?.cancel()
        let rpcStatus = RPCStatus(code: error?.code ?? .ok, message: error?.message ?? "")
        status = (rpcStatus, trailers)
        // Messages that came before the status reach the reader first.
        endOfResponses = .some(error)
        apply(reader.endOfInput())
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
            cont.resume(throwing: call.closedWith ?? RPCError(code: .internal, message: "no response headers"))
            return
        }
        metadataWaiters.append(cont)
    }

    func awaitStatus(_ cont: CheckedContinuation<(RPCStatus, Metadata), Never>) {
        if let status { cont.resume(returning: status) } else { statusWaiters.append(cont) }
    }
}
