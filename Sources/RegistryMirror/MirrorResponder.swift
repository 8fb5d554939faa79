import DragonflyCommon
import Foundation
import GeneratedAPI
import HTTPServing
import Logging
import NIOHTTP1
import PeerDaemon

/// The dfdaemon's HTTP/1.1 side: `/metrics`, `/healthy`, and the registry mirror. Blob
/// GETs matching a rule become P2P tasks; everything else goes straight to the upstream.
public final class MirrorResponder: HTTPResponder {
    let daemon: Daemon
    let config: ProxyConfig
    let operational: StaticRoutes
    let logger: Logger
    let resolver: UpstreamResolver
    let clients = UpstreamClients()
    let proxy: DirectProxy
    let authenticator: RegistryAuthenticator
    let rules: [(ProxyConfig.Rule, PatternRegex)]

    public init(daemon: Daemon, operational: StaticRoutes, logger: Logger) {
        self.daemon = daemon
        self.config = daemon.config.proxy
        self.operational = operational
        self.logger = logger
        resolver = UpstreamResolver(config: config)
        proxy = DirectProxy(clients: clients)
        authenticator = RegistryAuthenticator(clients: clients, policy: daemon.config.originPolicy)
        // Patterns were checked when the config was loaded.
        rules = config.rules.compactMap { rule in (try? PatternRegex(rule.regex)).map { (rule, $0) } }
    }

    public func shutdown() async { await clients.shutdown() }

    public func respond(to request: HTTPRequest, writer: HTTPResponseWriter) async throws {
        let requestID = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        defer {
            logger.info("mirror \(request.method.rawValue) \(LogRedaction.url(request.uri)) range=\(request.headers.first(name: "Range") ?? "-") keepalive=\(request.head.isKeepAlive) -> \(writer.status?.code ?? 0) \(writer.bodyBytes) bytes\(writer.completed ? "" : writer.clientGone ? " (client hung up)" : " (cut short)")", metadata: ["request_id": "\(requestID)"])
        }
        if let answer = operational.response(for: request.path), request.method == .GET || request.method == .HEAD {
            return try await StaticRoutes.write(answer, to: writer)
        }
        guard config.enabled else {
            return try await refuse(MirrorRefusal(status: 404, message: "the registry mirror is disabled (proxy.enable)"), writer)
        }
        if request.method == .CONNECT {
            return try await refuse(MirrorRefusal(status: 405, message: "CONNECT is not enabled on this proxy"), writer)
        }
        guard request.method == .GET || request.method == .HEAD else {
            return try await refuse(MirrorRefusal(status: 405, message: "the mirror is read-only: \(request.method.rawValue) is not allowed"), writer)
        }
        // Naming the content names the task id, any one: not for anonymous network clients.
        if request.headers.contains(name: "X-Dragonfly-Content-For-Calculating-Task-ID") {
            return try await refuse(MirrorRefusal(status: 400, message: "X-Dragonfly-Content-For-Calculating-Task-ID is not taken from "
                + "network clients: it would let a client store any bytes under another download's task id"), writer)
        }
        let target: UpstreamTarget
        do { target = try resolver.resolve(request) } catch { return try await refuse(error, writer) }
        // One origin policy for every path that fetches: what a peer may not download, a
        // mirror client may not reach through us either.
        if let why = await daemon.config.originPolicy.refusal(for: target.url) {
            return try await refuse(MirrorRefusal(status: 403, message: "refused: \(why)"), writer)
        }

        if request.method == .GET, request.headers.first(name: "X-Dragonfly-Use-P2P")?.lowercased() != "false",
           let rule = matchingRule(target.url) {
            if try await serveThroughP2P(request, target: applying(rule, to: target), rule: rule, writer: writer) { return }
        }
        try await serveDirectly(request, target: target, writer: writer)
    }

    func matchingRule(_ url: String) -> ProxyConfig.Rule? {
        rules.first { _, regex in regex.matches(url) }?.0
    }

    /// A rule's `redirect` sends the request to another host; `useTLS` upgrades it to HTTPS.
    func applying(_ rule: ProxyConfig.Rule, to target: UpstreamTarget) -> UpstreamTarget {
        guard var c = URLComponents(string: target.url) else { return target }
        if let redirect = rule.redirect, let r = URLComponents(string: redirect.contains("://") ? redirect : "//\(redirect)") {
            c.host = r.host
            c.port = r.port
            if let scheme = r.scheme { c.scheme = scheme }
        }
        if rule.useTLS { c.scheme = "https" }
        var t = target
        t.url = c.string ?? target.url
        t.base = UpstreamResolver.normalized(t.url)
        return t
    }

    private func serveDirectly(_ request: HTTPRequest, target: UpstreamTarget, writer: HTTPResponseWriter) async throws {
        let repository = UpstreamResolver.repository(ofPath: URLComponents(string: target.url)?.path ?? request.path)
        do {
            let auth = request.headers.contains(name: "Authorization") ? nil
                : try await authenticator.authorization(for: target, repository: repository)
            let authenticator = self.authenticator
            let (status, bytes) = try await proxy.forward(request, to: target, authorization: auth, relogin: {
                await authenticator.forget(target)
                return try await authenticator.authorization(for: target, repository: repository)
            }, writer: writer)
            count(type: "direct", ok: status < 400 && writer.completed, bytes: bytes)
        } catch where writer.clientGone {
            count(type: "direct", ok: (writer.status?.code ?? 500) < 400, bytes: writer.bodyBytes)
            throw error
        } catch let refusal as MirrorRefusal where !writer.headSent {
            count(type: "direct", ok: false, bytes: 0)
            try await refuse(refusal, writer)
        } catch {
            count(type: "direct", ok: false, bytes: writer.bodyBytes)
            guard !writer.headSent else { throw error }
            logger.warning("mirror: upstream \(LogRedaction.url(target.url)) failed: \(error)")
            try await refuse(MirrorRefusal(status: 502, message: "upstream \(target.base) failed: \(error)"), writer, type: "backend")
        }
    }

    /// True when the response was given (or failed after it began); false when the request
    /// should go straight to the upstream instead.
    private func serveThroughP2P(_ request: HTTPRequest, target: UpstreamTarget, rule: ProxyConfig.Rule,
                                 writer: HTTPResponseWriter) async throws -> Bool {
        var download = Common_V2_Download()
        download.url = target.url
        download.type = .standard
        download.tag = request.headers.first(name: "X-Dragonfly-Tag")
        download.application = request.headers.first(name: "X-Dragonfly-Application")
        download.filteredQueryParams = rule.filteredQueryParams + (request.headers.first(name: "X-Dragonfly-Filtered-Query-Params")?
            .split(whereSeparator: { $0 == "&" || $0 == "," }).map { $0.trimmingCharacters(in: .whitespaces) } ?? [])
        if let text = request.headers.first(name: "X-Dragonfly-Piece-Length") {
            let allowed = PieceLayout.allowedPieceLengths
            guard let length = UInt64(text), allowed.contains(length) else {
                try await refuse(MirrorRefusal(status: 400, message: "X-Dragonfly-Piece-Length must be \(allowed.lowerBound)...\(allowed.upperBound) bytes"), writer)
                return true
            }
            download.pieceLength = length
        }
        if let digest = UpstreamResolver.blobDigest(inPath: URLComponents(string: target.url)?.path ?? "") { download.digest = digest }
        // One task per blob: its id is the blob's digest, whichever registry or mirror path
        // named it (upstream's X-Dragonfly-* headers override the config, as in its proxy).
        download.enableTaskIdBasedBlobDigest = Self.flag(request, "X-Dragonfly-Enable-Task-ID-Based-Blob-Digest")
            ?? config.taskIDBasedBlobDigest
        // A ranged request fetches its pieces first, then the rest in the background.
        download.prefetch = Self.flag(request, "X-Dragonfly-Prefetch") ?? config.prefetch
        var headers: [String: String] = [:]
        for h in request.headers where DirectProxy.isForwardable(h.name) {
            headers[h.name] = h.value
        }
        if headers.keys.first(where: { $0.lowercased() == "authorization" }) == nil {
            let repository = UpstreamResolver.repository(ofPath: URLComponents(string: target.url)?.path ?? "")
            if let auth = try? await authenticator.authorization(for: target, repository: repository) {
                headers["Authorization"] = auth
            }
        }
        download.requestHeader = headers

        var extra = HTTPHeaders()
        if let digest = download.digest { extra.add(name: "Docker-Content-Digest", value: digest) }
        let response = P2PBlobResponse(daemon: daemon, writer: writer, extraHeaders: extra)
        do {
            try await response.serve(download)
            count(type: "p2p", ok: true, bytes: writer.bodyBytes)
            return true
        } catch where writer.clientGone {
            count(type: "p2p", ok: true, bytes: writer.bodyBytes)
            throw error
        } catch {
            if await response.started {
                // Bytes already went out: all we can do is break the response.
                logger.warning("mirror: P2P blob \(LogRedaction.url(target.url)) failed after \(writer.bodyBytes) bytes: \(error)")
                count(type: "p2p", ok: false, bytes: writer.bodyBytes)
                throw error
            }
            logger.info("mirror: P2P could not start for \(LogRedaction.url(target.url)) (\(error)); going to the upstream directly")
            return false
        }
    }

    /// A `true`/`false` header, nil when absent or anything else.
    private static func flag(_ request: HTTPRequest, _ name: String) -> Bool? {
        switch request.headers.first(name: name)?.lowercased() {
        case "true": true
        case "false": false
        default: nil
        }
    }

    private func refuse(_ refusal: MirrorRefusal, _ writer: HTTPResponseWriter, type: String = "proxy") async throws {
        var h = HTTPHeaders()
        h.add(name: "X-Dragonfly-Error-Type", value: type)
        try await writer.respond(HTTPResponseStatus(statusCode: refusal.status), headers: h, body: refusal.message + "\n")
    }

    /// `result` says how the mirror's side went: the upstream's answer or the P2P task. A
    /// client that hangs up midway is not a failure of either (registry pings close after
    /// the head), as upstream Dragonfly counts only its own handler's errors.
    private func count(type: String, ok: Bool, bytes: Int) {
        daemon.metrics.counter("proxy_request_total", [("type", type), ("result", ok ? "success" : "failure")],
                               help: "Registry mirror requests, by how they were served and how they ended").increment()
        if bytes > 0 {
            daemon.metrics.counter("proxy_response_traffic_total", [("type", type)],
                                   help: "Body bytes the registry mirror sent to clients").increment(by: Int64(bytes))
        }
    }
}
