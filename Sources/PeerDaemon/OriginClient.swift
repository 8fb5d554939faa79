import AsyncHTTPClient
import DragonflyCommon
import Foundation
import NIOCore
import NIOSSL
import NIOHTTP1

/// What the origin said about the content before we fetch it.
public struct OriginInfo: Sendable {
    public var contentLength: UInt64
    public var headers: [String: String]
}

/// An origin failure, with the HTTP status when there was one.
public struct OriginError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var statusCode: Int?
    public var description: String { statusCode.map { "origin answered \($0): \(message)" } ?? message }
}

/// Fetches from the origin (back to source): HEAD for the length, ranged GETs per piece.
/// Redirects are followed; TLS is verified, except towards hosts configured as insecure.
public struct OriginClient: Sendable {
    let verified: HTTPClient
    let unverified: HTTPClient?
    let insecureHosts: Set<String>
    let timeout: TimeAmount

    /// `insecureHosts` are `host[:port]` names whose certificates are not checked (a
    /// registry configured `insecure: true`); `unverified` must then be a client that
    /// does not verify.
    public init(client: HTTPClient = .shared, unverified: HTTPClient? = nil, insecureHosts: Set<String> = [],
                timeout: Duration = .seconds(120)) {
        self.verified = client
        self.unverified = unverified
        self.insecureHosts = insecureHosts
        self.timeout = .nanoseconds(timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
    }

    /// The shared verifying client, plus a non-verifying one when some hosts are insecure.
    public static func forHosts(insecure hosts: Set<String>) -> OriginClient {
        guard !hosts.isEmpty else { return OriginClient() }
        var config = HTTPClient.Configuration()
        config.tlsConfiguration = .makeClientConfiguration()
        config.tlsConfiguration?.certificateVerification = .none
        return OriginClient(unverified: HTTPClient(configuration: config), insecureHosts: hosts)
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

    public func head(_ url: String, headers: [String: String]) async throws -> OriginInfo {
        var request = HTTPClientRequest(url: url)
        request.method = .HEAD
        for (k, v) in headers where k.lowercased() != "range" { request.headers.add(name: k, value: v) }
        let response: HTTPClientResponse
        do {
            response = try await client(for: url).execute(request, timeout: timeout)
        } catch {
            throw OriginError(message: "cannot reach \(url): \(error)")
        }
        guard (200..<300).contains(Int(response.status.code)) else {
            throw OriginError(message: response.status.reasonPhrase, statusCode: Int(response.status.code))
        }
        guard let text = response.headers.first(name: "content-length"), let length = UInt64(text) else {
            throw OriginError(message: "origin gave no Content-Length for \(url)")
        }
        var h: [String: String] = [:]
        for header in response.headers { h[header.name] = header.value }
        return OriginInfo(contentLength: length, headers: h)
    }

    /// Exactly `length` bytes from `offset`, or an error: a short or long answer is never
    /// taken as the piece.
    public func get(_ url: String, headers: [String: String], offset: UInt64, length: UInt64) async throws -> [UInt8] {
        var request = HTTPClientRequest(url: url)
        for (k, v) in headers where k.lowercased() != "range" { request.headers.add(name: k, value: v) }
        request.headers.replaceOrAdd(name: "Range", value: "bytes=\(offset)-\(offset + length - 1)")
        let response = try await client(for: url).execute(request, timeout: timeout)
        let code = Int(response.status.code)
        guard code == 206 || (code == 200 && offset == 0) else {
            throw OriginError(message: "ranged GET failed", statusCode: code)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(length))
        do {
            for try await var chunk in response.body {
                bytes += chunk.readBytes(length: chunk.readableBytes) ?? []
                if bytes.count >= Int(length) {
                    // A 200 carries the whole file: take our piece and stop reading.
                    if code == 200 { return Array(bytes.prefix(Int(length))) }
                    if bytes.count > Int(length) {
                        throw OriginError(message: "origin sent more than the \(length) bytes asked for")
                    }
                }
            }
        } catch let error as OriginError {
            throw error
        } catch {
            throw OriginError(message: "origin body ended after \(bytes.count) of \(length) bytes (truncated?): \(error)")
        }
        guard bytes.count == Int(length) else {
            throw OriginError(message: "origin sent \(bytes.count) bytes for a \(length)-byte piece (truncated?)")
        }
        return bytes
    }
}
