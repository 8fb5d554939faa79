import RPCCore
import Testing
@testable import RPCTransport

/// The gRPC call rules as values, event by event, with no socket and no nghttp2.
@Suite struct ClientCallStateTests {
    let okHeaders = [(":status", "200"), ("content-type", "application/grpc"), ("x-token", "abc")]

    /// The statuses the actions decide, in order; nil for OK.
    func completions(_ actions: [ClientCallState.Action]) -> [StatusCode?] {
        actions.compactMap { if case .complete(let error, _) = $0 { return .some(error?.code) } else { return nil } }
    }

    func initialMetadata(_ actions: [ClientCallState.Action]) -> [Metadata] {
        actions.compactMap { if case .initialMetadata(let m) = $0 { return m } else { return nil } }
    }

    func resets(_ actions: [ClientCallState.Action]) -> [HTTP2ErrorCode] {
        actions.compactMap { if case .reset(let code) = $0 { return code } else { return nil } }
    }

    @Test func headersThenMessagesThenTrailers() {
        var call = ClientCallState()
        let first = call.headersReceived(okHeaders, endStream: false)
        #expect(initialMetadata(first).first?["x-token"] == "abc")
        #expect(completions(first).isEmpty && call.phase == .receiving)
        #expect(call.dataReceived() == .deliver)
        let last = call.headersReceived([("grpc-status", "0")], endStream: true)
        #expect(completions(last) == [nil] && call.phase == .closed)
        // After the status, DATA is dropped and a send reports the (OK) status.
        #expect(call.dataReceived() == .discard)
        guard case .fail(let error) = call.send() else { Issue.record("a send after the status was queued"); return }
        #expect(error.code == .ok)
    }

    @Test func aTrailersOnlyResponseIsTheStatusWithEmptyInitialMetadata() {
        var call = ClientCallState()
        let actions = call.headersReceived([(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "5"),
                                            ("grpc-message", "no%20such%20task")], endStream: true)
        #expect(initialMetadata(actions) == [Metadata()])
        guard case .complete(let error, _)? = actions.last else { Issue.record("no status"); return }
        #expect(error?.code == .notFound && error?.message == "no such task")
    }

    @Test(arguments: [
        ([(":status", "503"), ("content-type", "application/grpc")], StatusCode.unavailable),
        ([(":status", "404")], .unimplemented),
        ([(":status", "200"), ("content-type", "text/html")], .unknown),
    ] as [([(String, String)], StatusCode)])
    func responsesThatAreNotGRPCFailTheCall(headers: [(String, String)], code: StatusCode) {
        var call = ClientCallState()
        #expect(completions(call.headersReceived(headers, endStream: false)) == [code])
        #expect(call.phase == .closed)
    }

    @Test func aResponseThatEndsWithoutAStatusIsInternal() {
        var headersOnly = ClientCallState()
        let ended = headersOnly.headersReceived(okHeaders, endStream: true)
        #expect(initialMetadata(ended).count == 1 && completions(ended) == [.internal])

        var noStatus = ClientCallState()
        _ = noStatus.headersReceived(okHeaders, endStream: false)
        #expect(completions(noStatus.headersReceived([("x-trailer", "1")], endStream: true)) == [.internal])

        var garbled = ClientCallState()
        _ = garbled.headersReceived(okHeaders, endStream: false)
        #expect(completions(garbled.headersReceived([("grpc-status", "seven")], endStream: true)) == [.internal])
    }

    @Test func theResponseEncodingIsTaken() {
        var call = ClientCallState()
        let actions = call.headersReceived(okHeaders + [("grpc-encoding", "gzip")], endStream: false)
        #expect(actions.contains { if case .useEncoding("gzip") = $0 { return true } else { return false } })
    }

    @Test(arguments: [(UInt32(0), StatusCode.internal), (7, .unavailable), (8, .cancelled), (11, .resourceExhausted),
                      (12, .permissionDenied), (2, .internal), (99, .internal)] as [(UInt32, StatusCode)])
    func aStreamClosedWithoutAStatusFailsAsItsResetSays(errorCode: UInt32, code: StatusCode) {
        var call = ClientCallState()
        _ = call.headersReceived(okHeaders, endStream: false)
        #expect(completions(call.streamClosed(errorCode: errorCode)) == [code])
        // Once decided, the status never changes.
        #expect(call.streamClosed(errorCode: 8).isEmpty)
        #expect(call.cancel(RPCError(code: .cancelled, message: "late")).isEmpty)
    }

    @Test func cancellingOrAnUnreadableMessageResetsTheStreamOnce() {
        var cancelled = ClientCallState()
        let actions = cancelled.cancel(RPCError(code: .deadlineExceeded, message: "deadline exceeded"))
        #expect(completions(actions) == [.deadlineExceeded] && resets(actions) == [.cancel])
        #expect(cancelled.cancel(RPCError(code: .cancelled, message: "again")).isEmpty)
        #expect(cancelled.headersReceived(okHeaders, endStream: false).isEmpty, "headers after the status change nothing")

        var unreadable = ClientCallState()
        _ = unreadable.headersReceived(okHeaders, endStream: false)
        let failed = unreadable.messageUnreadable(RPCError(code: .resourceExhausted, message: "too large"))
        #expect(completions(failed) == [.resourceExhausted] && resets(failed) == [.cancel])
    }

    @Test func theRequestSideQueuesUntilItsEndThenDropsSilently() {
        var call = ClientCallState()
        guard case .queue = call.send() else { Issue.record("a first send was not queued"); return }
        #expect(call.finishSending() == true)
        #expect(call.finishSending() == false, "END_STREAM goes out once")
        guard case .dropSilently = call.send() else { Issue.record("a send after the end was not dropped"); return }
        _ = call.connectionLost(RPCError(code: .unavailable, message: "connection closed"))
        guard case .fail(let error) = call.send() else { Issue.record("a send after the status did not fail"); return }
        #expect(error.code == .unavailable)
    }
}

@Suite struct ServerCallStateTests {
    let grpc = [(":method", "POST"), (":path", "/pkg.S/M"), ("content-type", "application/grpc+proto")]

    @Test(arguments: [
        ([(":method", "GET"), (":path", "/pkg.S/M"), ("content-type", "application/grpc")], ServerCallState.Refusal.httpStatus(405)),
        ([(":method", "POST"), (":path", "/pkg.S/M"), ("content-type", "text/plain")], .httpStatus(415)),
        ([(":method", "POST"), (":path", "/pkg.S/M"), ("content-type", "application/grpc"), ("grpc-timeout", "soon")],
         .status(.internal, "malformed grpc-timeout soon")),
        ([(":method", "POST"), (":path", "/pkg.S/M"), ("content-type", "application/grpc"), ("grpc-encoding", "br")],
         .status(.unimplemented, "unsupported grpc-encoding br")),
    ] as [([(String, String)], ServerCallState.Refusal)])
    func requestsThatAreNotTakenAndHowTheyAreAnswered(headers: [(String, String)], refusal: ServerCallState.Refusal) {
        #expect(ServerCallState.admit(headers) == .failure(refusal))
    }

    @Test func anAdmittedRequestCarriesItsPathDeadlineAndEncoding() {
        #expect(ServerCallState.admit(grpc) == .success(.init(path: "/pkg.S/M")))
        #expect(ServerCallState.admit(grpc + [("grpc-timeout", "100m"), ("grpc-encoding", "gzip")])
                == .success(.init(path: "/pkg.S/M", timeout: .milliseconds(100), encoding: "gzip")))
        #expect(ServerCallState.admit(grpc + [("grpc-encoding", "identity")]) == .success(.init(path: "/pkg.S/M")))
    }

    @Test func aStatusBeforeAnyMessageIsTrailersOnly() {
        var call = ServerCallState()
        #expect(call.finish() == .trailersOnly)
        #expect(call.finish() == .ignore)
        #expect(call.write() == .reject(RPCError(code: .failedPrecondition, message: "call already finished")))
    }

    @Test func messagesGoAfterTheHeadersAndTheStatusAfterTheMessages() {
        var call = ServerCallState()
        #expect(call.write() == .queue(headersFirst: true))
        #expect(call.write() == .queue(headersFirst: false))
        #expect(call.dataReceived() == .deliver)
        #expect(call.finish() == .trailers)
        #expect(call.dataReceived() == .discard, "what a client sends after the status is dropped")
        #expect(call.streamClosed(errorCode: 0) == .failParkedWrites)
    }

    @Test func aStreamResetWhileTheHandlerRunsCancelsIt() {
        var call = ServerCallState()
        _ = call.write()
        guard case .abortHandler(let error) = call.streamClosed(errorCode: 8) else { Issue.record("the handler ran on"); return }
        #expect(error.code == .cancelled)
        #expect(call.finish() == .ignore, "a handler that finishes afterwards sends nothing")
    }

    @Test func aRequestCutInsideAMessageIsAnError() {
        #expect(ServerCallState.requestEnd(buffered: 0) == nil)
        #expect(ServerCallState.requestEnd(buffered: 3)?.code == .internal)
    }
}
