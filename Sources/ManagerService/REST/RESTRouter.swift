import DragonflyCommon
import ManagerCore
import HTTPServing
import Logging
import NIOCore
import NIOHTTP1

/// One answer of the REST API, written whole with its length.
public struct RESTResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// A route's handler: the request and who is calling, to an answer or an error that
/// `RESTErrors` turns into one.
typealias RESTHandler = @Sendable (HTTPRequest, ManagerRequestContext) async throws -> RESTResponse

/// The manager's routes, served on `HTTPServing`: a path pattern per route (`:name` matches
/// one segment), the credential check for the groups that need one, and one place where
/// every failure becomes `{"message": …}` and every answer is counted.
public struct RESTRouter: HTTPResponder {
    struct Route: Sendable {
        enum Segment: Sendable, Equatable {
            case literal(String)
            case parameter(String)
        }
        let method: HTTPMethod
        let segments: [Segment]
        let authenticator: Authenticator?
        let handler: RESTHandler

        /// The parameters when `path` fits this route's pattern.
        func match(_ path: [Substring]) -> [String: String]? {
            guard path.count == segments.count else { return nil }
            var parameters: [String: String] = [:]
            for (pattern, segment) in zip(segments, path) {
                switch pattern {
                case .literal(let text):
                    guard segment == text else { return nil }
                case .parameter(let name):
                    guard let decoded = String(segment).removingPercentEncoding, !decoded.isEmpty else { return nil }
                    parameters[name] = decoded
                }
            }
            return parameters
        }
    }

    let routes: [Route]
    let metrics: MetricsRegistry
    let logger: Logger

    public func respond(to request: HTTPRequest, writer: HTTPResponseWriter) async throws {
        let response: RESTResponse
        do {
            response = try await dispatch(request)
        } catch {
            response = RESTErrors.response(for: error, logger: logger)
        }
        metrics.counter("rest_request_total", [("method", request.method.rawValue), ("code", String(response.status.code))],
                        help: "REST requests, by method and status").increment()
        var headers = response.headers
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
        try await writer.writeHead(response.status, headers: headers)
        try await writer.writeBody(response.body)
        try await writer.end()
    }

    func dispatch(_ request: HTTPRequest) async throws -> RESTResponse {
        let path = request.path.split(separator: "/", omittingEmptySubsequences: true)
        // HEAD is answered as GET; the writer leaves the body out.
        let method = request.method == .HEAD ? .GET : request.method
        var allowed: [HTTPMethod] = []
        for route in routes {
            guard let parameters = route.match(path) else { continue }
            guard route.method == method else {
                allowed.append(route.method)
                continue
            }
            var context = ManagerRequestContext(clientIP: request.remoteAddress?.ipAddress ?? "unknown", parameters: parameters,
                                                logger: logger)
            if let authenticator = route.authenticator { context = try await authenticator.identify(request, context) }
            return try await route.handler(request, context)
        }
        if !allowed.isEmpty {
            var headers = HTTPHeaders()
            headers.add(name: "Allow", value: allowed.map(\.rawValue).joined(separator: ", "))
            return try REST.json(["message": "\(request.method.rawValue) is not allowed here"], status: .methodNotAllowed,
                                 headers: headers)
        }
        throw ManagerError(.notFound, "no such endpoint: \(request.path)")
    }
}

/// Collects routes while the API is put together; `router()` freezes them.
final class RouteTable {
    private(set) var routes: [RESTRouter.Route] = []

    func group(_ prefix: String, authenticator: Authenticator? = nil) -> RouteGroup {
        RouteGroup(table: self, prefix: prefix, authenticator: authenticator)
    }

    func add(_ method: HTTPMethod, _ path: String, authenticator: Authenticator?, _ handler: @escaping RESTHandler) {
        let segments = path.split(separator: "/").map { part -> RESTRouter.Route.Segment in
            part.hasPrefix(":") ? .parameter(String(part.dropFirst())) : .literal(String(part))
        }
        routes.append(.init(method: method, segments: segments, authenticator: authenticator, handler: handler))
    }

    func get(_ path: String, _ handler: @escaping RESTHandler) { add(.GET, path, authenticator: nil, handler) }

    /// Literal segments are tried before parameters at the same place (`users/me` before
    /// `users/:id`), whatever the order the routes were added in.
    func router(metrics: MetricsRegistry, logger: Logger) -> RESTRouter {
        let rank = { (route: RESTRouter.Route) in route.segments.map { if case .literal = $0 { 0 } else { 1 } } }
        let ordered = routes.enumerated().sorted { a, b in
            let (ra, rb) = (rank(a.element), rank(b.element))
            return ra == rb ? a.offset < b.offset : ra.lexicographicallyPrecedes(rb)
        }.map(\.element)
        return RESTRouter(routes: ordered, metrics: metrics, logger: logger)
    }
}

/// Routes under one prefix that share a credential check.
struct RouteGroup {
    let table: RouteTable
    let prefix: String
    let authenticator: Authenticator?

    func get(_ path: String, _ handler: @escaping RESTHandler) { add(.GET, path, handler) }
    func post(_ path: String, _ handler: @escaping RESTHandler) { add(.POST, path, handler) }
    func patch(_ path: String, _ handler: @escaping RESTHandler) { add(.PATCH, path, handler) }
    func delete(_ path: String, _ handler: @escaping RESTHandler) { add(.DELETE, path, handler) }

    private func add(_ method: HTTPMethod, _ path: String, _ handler: @escaping RESTHandler) {
        table.add(method, "\(prefix)/\(path)", authenticator: authenticator, handler)
    }
}

/// Every failure as `{"message": …}` with its status; anything unexpected is logged and
/// answered without its details.
enum RESTErrors {
    static func response(for error: any Error, logger: Logger) -> RESTResponse {
        let status: HTTPResponseStatus
        let message: String
        var headers = HTTPHeaders()
        switch error {
        case let e as ManagerError:
            switch e.kind {
            case .notFound: status = .notFound
            case .conflict: status = .conflict
            case .invalid: status = .badRequest
            case .unauthorized: status = .unauthorized
            case .forbidden: status = .forbidden
            case .tooManyRequests:
                status = .tooManyRequests
                if let seconds = e.retryAfterSeconds { headers.add(name: "Retry-After", value: String(seconds)) }
            }
            message = e.message
        default:
            logger.error("request failed: \(error)")
            status = .internalServerError
            message = "internal error"
        }
        if status == .unauthorized { headers.add(name: "WWW-Authenticate", value: #"Bearer realm="dragonfly""#) }
        return (try? REST.json(["message": message], status: status, headers: headers)) ?? RESTResponse(status: status)
    }
}
