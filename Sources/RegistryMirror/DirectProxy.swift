import AsyncHTTPClient
import HTTPServing
import NIOCore
import NIOHTTP1

/// Forwards a request to the upstream and streams its answer back unchanged, but for
/// hop-by-hop headers. Used for everything that is not a P2P blob, and for blobs when P2P
/// cannot serve them.
struct DirectProxy: Sendable {
    let clients: UpstreamClients

    /// Headers that describe one connection, not the message, and Dragonfly's own.
    static func isForwardable(_ name: String) -> Bool {
        let n = name.lowercased()
        return !["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te",
                 "trailer", "transfer-encoding", "upgrade", "host"].contains(n) && !n.hasPrefix("x-dragonfly-")
    }

    /// Returns the upstream status and the body bytes relayed.
    /// `relogin` is asked for fresh credentials once when the upstream refuses the ones we
    /// added (a token expired, a password changed).
    func forward(_ request: HTTPRequest, to target: UpstreamTarget, authorization: String?,
                 relogin: @Sendable () async throws -> String? = { nil },
                 writer: HTTPResponseWriter) async throws -> (status: UInt, bytes: Int) {
        var response = try await send(request, to: target, authorization: authorization)
        if response.status == .unauthorized, authorization != nil, !request.headers.contains(name: "Authorization"),
           let fresh = try await relogin() {
            _ = try? await response.body.collect(upTo: 1 << 20)
            response = try await send(request, to: target, authorization: fresh)
        }
        return try await relay(response, for: request, writer: writer)
    }

    private func send(_ request: HTTPRequest, to target: UpstreamTarget, authorization: String?) async throws -> HTTPClientResponse {
        var upstream = HTTPClientRequest(url: target.url)
        upstream.method = request.method
        for h in request.headers where Self.isForwardable(h.name) {
            upstream.headers.add(name: h.name, value: h.value)
        }
        if let authorization, !request.headers.contains(name: "Authorization") {
            upstream.headers.replaceOrAdd(name: "Authorization", value: authorization)
        }
        return try await clients.client(insecure: target.insecure).execute(upstream, timeout: .hours(6))
    }

    private func relay(_ response: HTTPClientResponse, for request: HTTPRequest,
                       writer: HTTPResponseWriter) async throws -> (status: UInt, bytes: Int) {
        var headers = HTTPHeaders()
        for h in response.headers where Self.isForwardable(h.name) { headers.add(name: h.name, value: h.value) }
        if response.status.code >= 400 { headers.add(name: "X-Dragonfly-Error-Type", value: "backend") }
        try await writer.writeHead(response.status, headers: headers)
        var relayed = 0
        for try await chunk in response.body {
            relayed += chunk.readableBytes
            try await writer.writeBody(chunk)
        }
        if let expected = response.headers.first(name: "Content-Length").flatMap(Int.init), request.method != .HEAD,
           relayed != expected {
            // Upstream cut the body short: leave the response unended so the client sees it.
            return (response.status.code, relayed)
        }
        try await writer.end()
        return (response.status.code, relayed)
    }
}
