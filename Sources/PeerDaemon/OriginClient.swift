import AsyncHTTPClient
import PeerStorage
import DragonflyCommon
import Foundation
import NIOCore
import NIOSSL
import NIOHTTP1
import PeerConfig

/// What the origin said about the content before we fetch it.
public struct OriginInfo: Sendable {
    public var contentLength: UInt64
    public var headers: [String: String]
}

/// What identifies one version of the origin's content: its `ETag` and `Last-Modified`, as
/// its HEAD gave them. A GET that names another version means the content changed between
/// requests, and its bytes must not be mixed with the pieces already fetched.
public struct OriginValidators: Sendable, Equatable {
    public var etag: String?
    public var lastModified: String?
    /// The length the HEAD announced; a ranged answer's `Content-Range` must agree.
    public var contentLength: UInt64?

    public init(etag: String? = nil, lastModified: String? = nil, contentLength: UInt64? = nil) {
        self.etag = etag
        self.lastModified = lastModified
        self.contentLength = contentLength
    }

    init(headers: [String: String], contentLength: UInt64? = nil) {
        func value(_ name: String) -> String? { headers.first { $0.key.lowercased() == name }?.value }
        self.init(etag: value("etag"), lastModified: value("last-modified"), contentLength: contentLength)
    }

    init(_ headers: HTTPHeaders) {
        self.init(etag: headers.first(name: "etag"), lastModified: headers.first(name: "last-modified"))
    }

    /// Why `response` is not the version these validators name, or nil. A validator the
    /// HEAD or the GET left out proves nothing either way, and a weak ETag (`W/"x"`) is
    /// compared as the strong one it marks, since servers differ in which they send when.
    func mismatch(_ response: OriginValidators) -> String? {
        func opaque(_ tag: String) -> Substring { tag.hasPrefix("W/") ? tag.dropFirst(2) : Substring(tag) }
        if let etag, let other = response.etag, opaque(etag) != opaque(other) { return "ETag was \(etag), is now \(other)" }
        if let lastModified, let other = response.lastModified, lastModified != other {
            return "Last-Modified was \(lastModified), is now \(other)"
        }
        return nil
    }
}

/// An origin failure, with the HTTP status when there was one.
public struct OriginError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var statusCode: Int?
    /// The origin policy refused the URL or a redirect: nothing was fetched.
    public var refused = false
    /// The origin answered a ranged GET with the whole content (200): it does not serve
    /// ranges, so the download reads one whole response in order instead.
    public var rangeIgnored = false
    /// The origin's content changed between requests (its validators differ).
    public var contentChanged = false
    /// Neither a HEAD nor a ranged GET told the content's length (a chunked origin): the
    /// body must be read to its end before it can be cut into pieces.
    public var unknownLength = false
    public var description: String { statusCode.map { "origin answered \($0): \(message)" } ?? message }
}

/// Fetches from the origin (back to source): HEAD for the length, ranged GETs per piece.
/// Redirects are followed here, not by the HTTP client, so that every hop is checked
/// against the origin policy and credentials are not handed to another host. TLS is
/// verified, except towards hosts configured as insecure.
public struct OriginClient: Sendable {
    let verified: HTTPClient
    let unverified: HTTPClient?
    let insecureHosts: Set<String>
    let timeout: TimeAmount
    let policy: OriginPolicy
    static let maxRedirects = 5

    /// A verifying client that leaves redirects to us; shared like `HTTPClient.shared`.
    public static let noRedirects = HTTPClient(configuration: .init(redirectConfiguration: .disallow))

    /// `insecureHosts` are `host[:port]` names whose certificates are not checked (a
    /// registry configured `insecure: true`); `unverified` must then be a client that
    /// does not verify. Both clients must not follow redirects themselves.
    public init(client: HTTPClient = OriginClient.noRedirects, unverified: HTTPClient? = nil, insecureHosts: Set<String> = [],
                timeout: Duration = .seconds(120), policy: OriginPolicy = OriginPolicy()) {
        self.verified = client
        self.unverified = unverified
        self.insecureHosts = insecureHosts
        self.policy = policy
        self.timeout = .nanoseconds(timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
    }

    /// The shared verifying client, plus a non-verifying one when some hosts are insecure.
    public static func forHosts(insecure hosts: Set<String>, policy: OriginPolicy = OriginPolicy()) -> OriginClient {
        guard !hosts.isEmpty else { return OriginClient(policy: policy) }
        var config = HTTPClient.Configuration(redirectConfiguration: .disallow)
        config.tlsConfiguration = .makeClientConfiguration()
        config.tlsConfiguration?.certificateVerification = .none
        return OriginClient(unverified: HTTPClient(configuration: config), insecureHosts: hosts, policy: policy)
    }

    /// Shuts down the client this value made (the shared one lives on).
    public func shutdown() async {
        try? await unverified?.shutdown()
    }

    func client(for url: String) -> HTTPClient {
        guard let unverified, !insecureHosts.isEmpty, let c = URLComponents(string: url), insecureHosts.contains(c.authority) else {
            return verified
        }
        return unverified
    }

    /// Sends the request, following up to `maxRedirects` redirects; each target must pass the
    /// policy, and credentials go only to the host they were given for.
    func execute(_ url: String, method: HTTPMethod, headers: [String: String], range: String?) async throws -> HTTPClientResponse {
        try await executeFollowing(url, method: method, headers: headers, range: range).response
    }

    /// As `execute`, with the URL that answered after the redirects.
    func executeFollowing(_ url: String, method: HTTPMethod, headers: [String: String], range: String?) async throws
        -> (response: HTTPClientResponse, finalURL: String) {
        var current = url
        var sendCredentials = true
        let firstAuthority = URLComponents(string: url)?.authority.lowercased()
        for _ in 0...Self.maxRedirects {
            if let why = await policy.refusal(for: current) {
                throw OriginError(message: "refused: \(why)", statusCode: nil, refused: true)
            }
            var request = HTTPClientRequest(url: current)
            request.method = method
            for (k, v) in headers where k.lowercased() != "range" {
                if !sendCredentials && LogRedaction.isCredentialName(k) { continue }
                request.headers.add(name: k, value: v)
            }
            if let range { request.headers.replaceOrAdd(name: "Range", value: range) }
            let response: HTTPClientResponse
            do {
                response = try await client(for: current).execute(request, timeout: timeout)
            } catch {
                throw OriginError(message: "cannot reach \(LogRedaction.url(current)): \(error)")
            }
            guard [301, 302, 303, 307, 308].contains(Int(response.status.code)) else { return (response, current) }
            guard let location = response.headers.first(name: "location"),
                  let next = URL(string: location, relativeTo: URL(string: current))?.absoluteURL.absoluteString else {
                throw OriginError(message: "redirect without a usable Location", statusCode: Int(response.status.code))
            }
            _ = try? await response.body.collect(upTo: 64 << 10)
            current = next
            // A redirect to another host (object storage, a CDN) carries its own signature.
            if URLComponents(string: next)?.authority.lowercased() != firstAuthority { sendCredentials = false }
        }
        throw OriginError(message: "more than \(Self.maxRedirects) redirects from \(LogRedaction.url(url))")
    }

    /// Sends `length` bytes from `body` to `url` with a PUT (a persistent task's upload to
    /// its origin). The URL must pass the policy; a redirect is an error rather than
    /// followed, since the body cannot be sent twice. Fails unless the answer is 2xx.
    public func put(_ url: String, length: UInt64, body: AsyncThrowingStream<ByteBuffer, any Error>) async throws {
        if let why = await policy.refusal(for: url) {
            throw OriginError(message: "refused: \(why)", statusCode: nil, refused: true)
        }
        var request = HTTPClientRequest(url: url)
        request.method = .PUT
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        request.body = .stream(body, length: .known(Int64(length)))
        let response: HTTPClientResponse
        do {
            response = try await client(for: url).execute(request, timeout: .hours(24))
        } catch {
            throw OriginError(message: "cannot PUT to \(LogRedaction.url(url)): \(error)")
        }
        let answer = try? await response.body.collect(upTo: 64 << 10)
        guard (200..<300).contains(Int(response.status.code)) else {
            let text = answer.map { String(buffer: $0) } ?? ""
            throw OriginError(message: "PUT to \(LogRedaction.url(url)) answered \(response.status.code) \(text.prefix(200))",
                              statusCode: Int(response.status.code))
        }
    }

    /// The content's length and headers, from a HEAD; an origin that refuses HEAD (405,
    /// 501, or 403 from a URL signed for GET only, as object stores sign them) is asked
    /// with a one-byte ranged GET instead, whose `Content-Range` (or, from an origin that
    /// ignores Range, `Content-Length`) gives the length.
    public func head(_ url: String, headers: [String: String]) async throws -> OriginInfo {
        let response = try await execute(url, method: .HEAD, headers: headers, range: nil)
        let code = Int(response.status.code)
        if [403, 405, 501].contains(code) {
            return try await probe(url, headers: headers, headRefused: code)
        }
        guard (200..<300).contains(code) else {
            throw OriginError(message: response.status.reasonPhrase, statusCode: code)
        }
        guard let text = response.headers.first(name: "content-length"), let length = UInt64(text) else {
            // A HEAD without a length (a chunked origin); a ranged GET may still tell it.
            return try await probe(url, headers: headers, headRefused: nil)
        }
        return OriginInfo(contentLength: length, headers: Self.flatten(response.headers))
    }

    /// The length from a one-byte ranged GET, when a HEAD was refused (`headRefused`) or
    /// gave none.
    private func probe(_ url: String, headers: [String: String], headRefused: Int?) async throws -> OriginInfo {
        let response = try await execute(url, method: .GET, headers: headers, range: "bytes=0-0")
        let code = Int(response.status.code)
        // Only the headers are wanted; the body (one byte, or the whole file) is left unread
        // and the connection closed with it.
        let length: UInt64?
        switch code {
        case 206: length = response.headers.first(name: "content-range").flatMap(Self.totalLength(contentRange:))
        case 200: length = response.headers.first(name: "content-length").flatMap { UInt64($0) }
        default:
            let head = headRefused.map { "HEAD answered \($0)" } ?? "HEAD gave no length"
            throw OriginError(message: "\(head), and a GET answered \(code)", statusCode: code)
        }
        guard let length else {
            throw OriginError(message: "origin gives no length for \(LogRedaction.url(url))", unknownLength: true)
        }
        return OriginInfo(contentLength: length, headers: Self.flatten(response.headers))
    }

    /// The complete length in `bytes FIRST-LAST/TOTAL`; nil when it is unknown (`*`) or malformed.
    static func totalLength(contentRange: String) -> UInt64? {
        guard let slash = contentRange.lastIndex(of: "/") else { return nil }
        return UInt64(contentRange[contentRange.index(after: slash)...].trimmingCharacters(in: .whitespaces))
    }

    private static func flatten(_ headers: HTTPHeaders) -> [String: String] {
        var h: [String: String] = [:]
        for header in headers { h[header.name] = header.value }
        return h
    }

    /// A small document (a directory index) read whole, at most `maxBytes`: its status,
    /// headers and body, and the URL it came from after any redirects.
    public func page(_ url: String, headers: [String: String], maxBytes: Int) async throws
        -> (status: Int, headers: [String: String], body: [UInt8], finalURL: String) {
        let (response, finalURL) = try await executeFollowing(url, method: .GET, headers: headers, range: nil)
        let code = Int(response.status.code)
        guard code == 200 else { return (code, Self.flatten(response.headers), [], finalURL) }
        var body: [UInt8] = []
        do {
            for try await chunk in response.body {
                guard body.count + chunk.readableBytes <= maxBytes else {
                    throw OriginError(message: "\(LogRedaction.url(url)) is larger than \(maxBytes) bytes")
                }
                chunk.withUnsafeReadableBytes { body.append(contentsOf: $0) }
            }
        } catch let error as OriginError {
            throw error
        } catch {
            throw OriginError(message: "reading \(LogRedaction.url(url)) failed: \(error)")
        }
        return (code, Self.flatten(response.headers), body, finalURL)
    }

    /// The whole content in one plain GET (for an origin that ignores Range): the response,
    /// whose body the caller reads in order.
    public func getWhole(_ url: String, headers: [String: String], expecting version: OriginValidators) async throws -> HTTPClientResponse {
        let response = try await execute(url, method: .GET, headers: headers, range: nil)
        let code = Int(response.status.code)
        guard code == 200 else { throw OriginError(message: "GET failed", statusCode: code) }
        try Self.check(response, against: version)
        if let expected = version.contentLength, let text = response.headers.first(name: "content-length"),
           let length = UInt64(text), length != expected {
            throw OriginError(message: "the origin's content changed during the download (its length was \(expected), is now \(length))",
                              contentChanged: true)
        }
        return response
    }

    private static func check(_ response: HTTPClientResponse, against version: OriginValidators) throws {
        if let why = version.mismatch(OriginValidators(response.headers)) {
            throw OriginError(message: "the origin's content changed during the download (\(why))", contentChanged: true)
        }
    }

    /// A ranged GET whose answer may carry the piece: a 206, or a 200 for a piece at offset
    /// 0 (the whole file; the piece is its start). Any other answer is an error here.
    private func openRange(_ url: String, headers: [String: String], offset: UInt64, length: UInt64,
                           expecting version: OriginValidators) async throws -> (HTTPClientResponse, Int) {
        guard length > 0, length <= UInt64(Int32.max), offset <= UInt64.max - length else {
            throw OriginError(message: "piece of \(length) bytes at \(offset) cannot be fetched")
        }
        let response = try await execute(url, method: .GET, headers: headers, range: "bytes=\(offset)-\(offset + length - 1)")
        let code = Int(response.status.code)
        if (200..<300).contains(code) { try Self.check(response, against: version) }
        // The whole length, as this answer gives it: Content-Range's total, or a 200's length.
        let total: UInt64? = code == 206
            ? response.headers.first(name: "content-range").flatMap(Self.totalLength(contentRange:))
            : code == 200 ? response.headers.first(name: "content-length").flatMap { UInt64($0) } : nil
        if let expected = version.contentLength, let total, total != expected {
            throw OriginError(message: "the origin's content changed during the download (its length was \(expected), is now \(total))",
                              contentChanged: true)
        }
        if code == 200 && offset > 0 {
            throw OriginError(message: "origin ignores Range", statusCode: code, rangeIgnored: true)
        }
        guard code == 206 || code == 200 else {
            throw OriginError(message: "ranged GET failed", statusCode: code)
        }
        return (response, code)
    }

    /// Exactly `length` bytes from `offset`, stored as they arrive into the piece `receive`
    /// opens once the answer's headers pass (so a changed origin is reported as such, not
    /// as whatever the store would say), or an error: a short or long answer is never taken
    /// as the piece. Nil when `receive` finds the piece stored already. The piece is
    /// complete, not yet committed, when it is returned.
    public func get(_ url: String, headers: [String: String], offset: UInt64, length: UInt64,
                    expecting version: OriginValidators = OriginValidators(),
                    into receive: () async throws -> IncomingPiece?) async throws -> IncomingPiece? {
        let (response, code) = try await openRange(url, headers: headers, offset: offset, length: length, expecting: version)
        guard let piece = try await receive() else { return nil }
        do {
            for try await chunk in response.body {
                let took = try await piece.append(chunk)
                // A 200 carries the whole file: the piece is its start, the rest is not read.
                if piece.remaining == 0 && code == 200 { return piece }
                if took < chunk.readableBytes {
                    throw OriginError(message: "origin sent more than the \(piece.length) bytes asked for")
                }
            }
        } catch let error as OriginError {
            throw error
        } catch let error as StorageError {
            throw error
        } catch {
            throw OriginError(message: "origin body ended after \(piece.received) of \(piece.length) bytes (truncated?): \(error)")
        }
        guard piece.remaining == 0 else {
            throw OriginError(message: "origin sent \(piece.received) bytes for a \(piece.length)-byte piece (truncated?)")
        }
        return piece
    }
}
