import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import HTTPServing

/// A writer on a testing channel, as `HTTPConnection` makes one for each request.
func withResponseWriter<T: Sendable>(isHEAD: Bool = false, keepAlive: Bool,
                                     _ body: (HTTPResponseWriter, NIOAsyncTestingChannel) async throws -> T) async throws -> T {
    let channel = NIOAsyncTestingChannel()
    let wrapped = try await channel.testingEventLoop.executeInContext {
        try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
    }
    return try await wrapped.executeThenClose { _, outbound in
        try await body(HTTPResponseWriter(outbound: outbound, channel: channel, isHEAD: isHEAD, keepAlive: keepAlive), channel)
    }
}

/// A client may close as soon as it has read a response's declared length, before the
/// server has written the response's end. Such a response reached the client whole; one
/// whose length was not declared, or whose body fell short of it, did not. (A fresh-clone
/// CI run counted skopeo's manifest requests through the mirror as failed this way.)
@Suite struct ResponseWriterEndTests {
    /// Writes a head with `headers` and `body`, closes the connection as a client would, then
    /// ends the response: whether `end` threw, and whether the writer calls it complete.
    func endAfterClientClose(headers: HTTPHeaders, body: Int, method: HTTPMethod = .GET) async throws -> (threw: Bool, completed: Bool) {
        try await withResponseWriter(isHEAD: method == .HEAD, keepAlive: false) { writer, channel in
            try await writer.writeHead(.ok, headers: headers)
            try await writer.writeBody(ByteBuffer(repeating: 7, count: body))
            try await channel.close()
            var threw = false
            do { try await writer.end() } catch { threw = true }
            return (threw, writer.completed)
        }
    }

    @Test func aBodyOfTheDeclaredLengthIsCompleteThoughTheClientClosedFirst() async throws {
        let result = try await endAfterClientClose(headers: ["Content-Length": "423"], body: 423)
        #expect(!result.threw)
        #expect(result.completed)
    }

    @Test func aHeadResponseIsCompleteThoughTheClientClosedFirst() async throws {
        let result = try await endAfterClientClose(headers: ["Content-Length": "1000"], body: 0, method: .HEAD)
        #expect(!result.threw)
        #expect(result.completed)
    }

    @Test func aShortBodyIsNotComplete() async throws {
        let result = try await endAfterClientClose(headers: ["Content-Length": "423"], body: 422)
        #expect(result.threw)
        #expect(!result.completed)
    }

    /// Without a declared length the end carries the last chunk: a client gone before it
    /// never had the whole response.
    @Test func aChunkedBodyIsNotCompleteWithoutItsEnd() async throws {
        let result = try await endAfterClientClose(headers: [:], body: 423)
        #expect(result.threw)
        #expect(!result.completed)
    }
}

/// A client that hangs up before the body (a registry ping reads the head and closes) makes
/// the next write fail; the writer says the client went, so its caller does not count the
/// response as its own failure. (A fresh-clone CI run counted skopeo's `/v2/` ping through
/// the mirror as a failed direct request this way.)
@Suite struct ResponseWriterClientGoneTests {
    @Test func aWriteAfterTheClientClosedSaysTheClientWent() async throws {
        try await withResponseWriter(keepAlive: false) { writer, channel in
            try await writer.writeHead(.ok, headers: ["Content-Length": "2"])
            #expect(!writer.clientGone)
            try await channel.close()
            await #expect(throws: (any Error).self) { try await writer.writeBody(Array("{}".utf8)) }
            #expect(writer.clientGone)
            #expect(!writer.completed)
        }
    }

    @Test func aWholeResponseLeavesTheClientThere() async throws {
        try await withResponseWriter(keepAlive: true) { writer, _ in
            try await writer.respond(.ok, body: "{}")
            #expect(writer.completed)
            #expect(!writer.clientGone)
        }
    }
}
