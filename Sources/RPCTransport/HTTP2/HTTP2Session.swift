import CNGHTTP2

/// What the HTTP/2 session reports to the layer above, during `receive`.
protocol HTTP2SessionDelegate: AnyObject {
    /// A complete header block (request/response headers or trailers).
    func http2Session(_ session: HTTP2Session, headersFor streamID: Int32, _ headers: [(String, String)], endStream: Bool)
    func http2Session(_ session: HTTP2Session, dataFor streamID: Int32, _ bytes: UnsafeRawBufferPointer)
    func http2Session(_ session: HTTP2Session, endStreamFor streamID: Int32)
    func http2Session(_ session: HTTP2Session, streamClosed streamID: Int32, errorCode: UInt32)
    /// How many outbound DATA bytes the stream has ready, at most `max`; nothing is copied
    /// yet (nghttp2 then asks for exactly those bytes through `sendDataFor`).
    func http2Session(_ session: HTTP2Session, readDataFor streamID: Int32, max: Int) -> HTTP2DataRead
    /// Hands the `count` bytes announced by the last `readDataFor` to `out`, as slices of
    /// where the stream keeps them, and drops them from its queue.
    func http2Session(_ session: HTTP2Session, sendDataFor streamID: Int32, count: Int, to out: OutputAssembler)
    func http2Session(_ session: HTTP2Session, goAwayReceived lastStreamID: Int32, errorCode: UInt32)
    func http2SessionPingAcked(_ session: HTTP2Session)
    /// The peer's SETTINGS (not an ACK) arrived; a client is ready to open streams then.
    func http2SessionSettingsReceived(_ session: HTTP2Session)
    /// A header block larger than our SETTINGS_MAX_HEADER_LIST_SIZE arrived; its fields
    /// were dropped. `size` counts as RFC 9113 does (name + value + 32 per field).
    func http2Session(_ session: HTTP2Session, headersTooLargeFor streamID: Int32, size: Int)
}

extension HTTP2SessionDelegate {
    func http2SessionSettingsReceived(_ session: HTTP2Session) {}
    func http2Session(_ session: HTTP2Session, headersTooLargeFor streamID: Int32, size: Int) {
        session.resetStream(streamID, errorCode: UInt32(NGHTTP2_REFUSED_STREAM.rawValue))
    }
}

/// What a data provider read produced.
enum HTTP2DataRead {
    /// Bytes ready; more may follow.
    case bytes(Int)
    /// Nothing to send now; resume the stream later.
    case deferred
    /// The last bytes; then END_STREAM, or these trailers when given.
    case end(Int, trailers: [(String, String)]?)
}

/// An HTTP/2 failure that ends the whole connection (as opposed to one stream).
struct HTTP2ConnectionError: Error, CustomStringConvertible {
    var code: Int32
    var description: String { "HTTP/2 connection error: " + String(cString: nghttp2_strerror(code)) }
}

/// Owns one `nghttp2_session`. Not thread-safe: lives on one event loop. Callbacks reach
/// back to this object through `Unmanaged` user data; the delegate is called only from
/// inside `receive` and `drainOutput`, never re-entrantly (nghttp2 forbids recv/send
/// from its own callbacks, and `isProcessing` guards against it).
final class HTTP2Session {
    enum Role { case client, server }

    private var session: OpaquePointer?
    unowned(unsafe) var delegate: (any HTTP2SessionDelegate)?
    private var pendingHeaders: [Int32: [(String, String)]] = [:]
    /// Bytes of each header block being received, to enforce `maxHeaderListSize`.
    private var pendingHeaderSize: [Int32: Int] = [:]
    /// The server's own checks of each request header block being received (see
    /// `RequestHeaderRules` for why nghttp2's are off on the server).
    private var pendingHeaderRules: [Int32: RequestHeaderRules] = [:]
    private let maxHeaderListSize: Int
    private(set) var isProcessing = false
    /// Where DATA frames go while `drainOutput` runs: nghttp2 does not copy their payload
    /// into its own buffer (NGHTTP2_DATA_FLAG_NO_COPY) but asks for it frame by frame.
    private var sink: OutputAssembler?
    let role: Role

    struct Settings {
        var maxConcurrentStreams: UInt32 = 100
        var initialWindowSize: UInt32 = 1 << 20
        var connectionWindowSize: Int32 = 16 << 20
        var maxHeaderListSize: UInt32 = 16 << 10
        /// The largest frame payload we accept (SETTINGS_MAX_FRAME_SIZE, 16 KiB–16 MiB);
        /// nghttp2 ends the connection with FRAME_SIZE_ERROR on a larger one.
        var maxFrameSize: UInt32 = 16 << 10
    }

    init(role: Role, settings: Settings = Settings()) throws {
        self.role = role
        self.maxHeaderListSize = Int(settings.maxHeaderListSize)
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        Self.installCallbacks(callbacks)

        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        // The application consumes bytes explicitly, so a slow reader withholds window.
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_max_send_header_block_length(option, 64 << 10)
        if role == .server { nghttp2_option_set_no_http_messaging(option, 1) }

        let me = Unmanaged.passUnretained(self).toOpaque()
        let rv: Int32 = role == .server
            ? nghttp2_session_server_new2(&session, callbacks, me, option)
            : nghttp2_session_client_new2(&session, callbacks, me, option)
        guard rv == 0 else { throw HTTP2ConnectionError(code: rv) }

        var iv = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: settings.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: settings.initialWindowSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: settings.maxHeaderListSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue),
                                   value: min(max(settings.maxFrameSize, 16 << 10), (16 << 20) - 1)),
        ]
        if role == .client { iv.removeFirst() }
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &iv, iv.count)
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, settings.connectionWindowSize)
    }

    deinit {
        nghttp2_session_del(session)
    }

    // MARK: - Driving the session

    /// Feeds received bytes; delegate callbacks fire during this call.
    func receive(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(!isProcessing, "nghttp2 session re-entered")
        isProcessing = true
        defer { isProcessing = false }
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        let n = nghttp2_session_mem_recv(session, base, bytes.count)
        if n < 0 { throw HTTP2ConnectionError(code: Int32(n)) }
    }

    /// Collects every byte nghttp2 wants to send now, in order: its own frames as it
    /// returns them, DATA payloads from the streams' queues as it asks for them.
    func drainOutput(into out: OutputAssembler) throws {
        precondition(!isProcessing, "nghttp2 session re-entered")
        isProcessing = true
        defer { isProcessing = false }
        sink = out
        defer { sink = nil }
        while true {
            var data: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &data)
            if n < 0 { throw HTTP2ConnectionError(code: Int32(n)) }
            if n == 0 { return }
            out.copy(UnsafeRawBufferPointer(start: data, count: n))
        }
    }

    var wantsIO: Bool {
        nghttp2_session_want_read(session) != 0 || nghttp2_session_want_write(session) != 0
    }

    // MARK: - Submitting frames

    /// Client: opens a stream with these headers and a deferred data provider.
    func submitRequest(_ headers: [(String, String)]) -> Int32 {
        var provider = Self.dataProvider()
        return withHeaderList(headers) { nva, count in
            nghttp2_submit_request(session, nil, nva, count, &provider, nil)
        }
    }

    /// Server: response headers, with a data provider unless `endStream`.
    @discardableResult
    func submitResponse(streamID: Int32, _ headers: [(String, String)], endStream: Bool) -> Int32 {
        withHeaderList(headers) { nva, count in
            if endStream {
                return nghttp2_submit_response(session, streamID, nva, count, nil)
            }
            var provider = Self.dataProvider()
            return nghttp2_submit_response(session, streamID, nva, count, &provider)
        }
    }

    /// Trailers; allowed from inside a data provider read (nghttp2 documents this).
    @discardableResult
    func submitTrailers(streamID: Int32, _ headers: [(String, String)]) -> Int32 {
        withHeaderList(headers) { nva, count in
            nghttp2_submit_trailer(session, streamID, nva, count)
        }
    }

    func resumeData(streamID: Int32) {
        nghttp2_session_resume_data(session, streamID)
    }

    func resetStream(_ streamID: Int32, errorCode: UInt32) {
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
    }

    /// Gives window back once the application has taken the bytes; for unknown or closed
    /// streams too, or the connection window would leak.
    func consume(streamID: Int32, count: Int) {
        guard count > 0 else { return }
        if nghttp2_session_consume(session, streamID, count) != 0 {
            nghttp2_session_consume_connection(session, count)
        }
    }
    func consumeConnection(count: Int) {
        guard count > 0 else { return }
        nghttp2_session_consume_connection(session, count)
    }
    func consumeStream(streamID: Int32, count: Int) {
        guard count > 0 else { return }
        nghttp2_session_consume_stream(session, streamID, count)
    }

    func submitPing() {
        nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
    }

    /// First step of a graceful shutdown: tells the client no new streams will be taken.
    func submitShutdownNotice() {
        nghttp2_submit_shutdown_notice(session)
    }

    func submitGoAway(errorCode: UInt32) {
        let last = nghttp2_session_get_last_proc_stream_id(session)
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode, nil, 0)
    }

    // MARK: - Callbacks

    private static func dataProvider() -> nghttp2_data_provider {
        var provider = nghttp2_data_provider()
        provider.read_callback = { sessionPtr, streamID, buf, length, flags, _, userData in
            guard let userData, let buf, let flags else { return ssize_t(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
            let me = Unmanaged<HTTP2Session>.fromOpaque(userData).takeUnretainedValue()
            guard let delegate = me.delegate else { return ssize_t(NGHTTP2_ERR_DEFERRED.rawValue) }
            _ = buf
            switch delegate.http2Session(me, readDataFor: streamID, max: length) {
            case .bytes(let n):
                flags.pointee |= NGHTTP2_DATA_FLAG_NO_COPY.rawValue
                return n
            case .deferred:
                return ssize_t(NGHTTP2_ERR_DEFERRED.rawValue)
            case .end(let n, let trailers):
                flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_COPY.rawValue
                if let trailers {
                    flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                    _ = me.submitTrailers(streamID: streamID, trailers)
                }
                _ = sessionPtr
                return n
            }
        }
        return provider
    }

    private static func instance(_ userData: UnsafeMutableRawPointer?) -> HTTP2Session? {
        guard let userData else { return nil }
        return Unmanaged<HTTP2Session>.fromOpaque(userData).takeUnretainedValue()
    }

    private static func installCallbacks(_ callbacks: OpaquePointer?) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            guard let me = HTTP2Session.instance(userData), let frame else { return 0 }
            me.pendingHeaders[frame.pointee.hd.stream_id] = []
            me.pendingHeaderSize[frame.pointee.hd.stream_id] = 0
            if me.role == .server {
                let block: RequestHeaderRules.Block = frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST ? .request : .trailers
                me.pendingHeaderRules[frame.pointee.hd.stream_id] = RequestHeaderRules(block: block)
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLen, value, valueLen, _, userData in
            guard let me = HTTP2Session.instance(userData), let frame, let name, let value else { return 0 }
            let streamID = frame.pointee.hd.stream_id
            let size = (me.pendingHeaderSize[streamID] ?? 0) + nameLen + valueLen + 32
            me.pendingHeaderSize[streamID] = size
            if me.role == .server {
                me.pendingHeaderRules[streamID]?.add(name: UnsafeBufferPointer(start: name, count: nameLen),
                                                     value: UnsafeBufferPointer(start: value, count: valueLen))
            }
            // Past the limit the fields are dropped (the block must still be decoded to keep
            // HPACK state in step); the delegate hears of it when the block ends.
            guard size <= me.maxHeaderListSize else {
                me.pendingHeaders[streamID] = nil
                return 0
            }
            let n = String(decoding: UnsafeBufferPointer(start: name, count: nameLen), as: UTF8.self)
            let v = String(decoding: UnsafeBufferPointer(start: value, count: valueLen), as: UTF8.self)
            me.pendingHeaders[frame.pointee.hd.stream_id, default: []].append((n, v))
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            guard let me = HTTP2Session.instance(userData), let frame, let delegate = me.delegate else { return 0 }
            let hd = frame.pointee.hd
            let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            switch UInt32(hd.type) {
            case NGHTTP2_HEADERS.rawValue:
                let size = me.pendingHeaderSize.removeValue(forKey: hd.stream_id) ?? 0
                if me.role == .server, me.pendingHeaderRules.removeValue(forKey: hd.stream_id)?.finish() != nil {
                    me.pendingHeaders[hd.stream_id] = nil
                    me.resetStream(hd.stream_id, errorCode: UInt32(NGHTTP2_PROTOCOL_ERROR.rawValue))
                    return 0
                }
                guard size <= me.maxHeaderListSize else {
                    me.pendingHeaders[hd.stream_id] = nil
                    delegate.http2Session(me, headersTooLargeFor: hd.stream_id, size: size)
                    return 0
                }
                let headers = me.pendingHeaders.removeValue(forKey: hd.stream_id) ?? []
                delegate.http2Session(me, headersFor: hd.stream_id, headers, endStream: endStream)
            case NGHTTP2_DATA.rawValue:
                if endStream { delegate.http2Session(me, endStreamFor: hd.stream_id) }
            case NGHTTP2_GOAWAY.rawValue:
                delegate.http2Session(me, goAwayReceived: frame.pointee.goaway.last_stream_id,
                                      errorCode: frame.pointee.goaway.error_code)
            case NGHTTP2_SETTINGS.rawValue:
                if hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { delegate.http2SessionSettingsReceived(me) }
            case NGHTTP2_PING.rawValue:
                if hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 { delegate.http2SessionPingAcked(me) }
            default:
                break
            }
            return 0
        }
        nghttp2_session_callbacks_set_send_data_callback(callbacks) { _, frame, framehd, length, _, userData in
            guard let me = HTTP2Session.instance(userData), let frame, let framehd, let sink = me.sink, let delegate = me.delegate else {
                return Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
            }
            // No padding is ever selected (no select_padding callback), so padlen is 0.
            guard frame.pointee.data.padlen == 0 else { return Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
            sink.copy(UnsafeRawBufferPointer(start: framehd, count: 9))
            if length > 0 { delegate.http2Session(me, sendDataFor: frame.pointee.hd.stream_id, count: length, to: sink) }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, len, userData in
            guard let me = HTTP2Session.instance(userData) else { return 0 }
            guard let delegate = me.delegate else {
                me.consume(streamID: streamID, count: len)
                return 0
            }
            delegate.http2Session(me, dataFor: streamID, UnsafeRawBufferPointer(start: data, count: len))
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            guard let me = HTTP2Session.instance(userData) else { return 0 }
            me.pendingHeaders.removeValue(forKey: streamID)
            me.pendingHeaderSize.removeValue(forKey: streamID)
            me.pendingHeaderRules.removeValue(forKey: streamID)
            me.delegate?.http2Session(me, streamClosed: streamID, errorCode: errorCode)
            return 0
        }
    }
}

/// Builds an `nghttp2_nv` array over one contiguous copy of the names and values, valid
/// for the duration of `body` (nghttp2 copies header fields on submit).
func withHeaderList<R>(_ headers: [(String, String)], _ body: (UnsafeMutablePointer<nghttp2_nv>?, Int) -> R) -> R {
    var storage: [UInt8] = []
    var spans: [(Int, Int, Int, Int)] = []
    for (name, value) in headers {
        let n0 = storage.count
        storage.append(contentsOf: name.utf8)
        let v0 = storage.count
        storage.append(contentsOf: value.utf8)
        spans.append((n0, v0 - n0, v0, storage.count - v0))
    }
    storage.append(0)
    return storage.withUnsafeMutableBufferPointer { buf in
        guard let base = buf.baseAddress else { return body(nil, 0) }
        var nva = spans.map { s in
            nghttp2_nv(name: base + s.0, value: base + s.2, namelen: s.1, valuelen: s.3,
                       flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
        }
        return nva.withUnsafeMutableBufferPointer { body($0.baseAddress, $0.count) }
    }
}
