import DragonflyCommon
import Foundation
import Hummingbird
import ManagerCore
import NIOCore

/// Per-request state: who is calling, once a middleware has checked.
public struct ManagerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    var user: UserRecord?
    var tokenScopes: [String]?
    /// The signed-in session's token, so signing out can revoke exactly it.
    var session: JWTSigner.Claims?
    /// The peer's IP as the socket reports it; forwarded-for headers are ignored, since
    /// anyone can send them and sign-in limits are keyed on this.
    let clientIP: String

    public init(source: Source) {
        coreContext = .init(source: source)
        clientIP = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// The caller, or 401.
    func requireUser() throws -> UserRecord {
        guard let user else { throw ManagerError(.unauthorized, "sign in first (Authorization: Bearer <token>)") }
        return user
    }

    /// The caller if root, else 403 (guests read, root writes).
    func requireRoot() throws -> UserRecord {
        let user = try requireUser()
        guard user.role == UserRole.root.rawValue else { throw ManagerError(.forbidden, "only root may change this") }
        return user
    }
}

enum REST {
    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        let data = try JSONCoding.encoder.encode(value)
        var h = headers
        h[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func noContent() -> Response { Response(status: .noContent) }

    /// A page of a list: the items, `X-Total-Count`, and RFC 8288 `Link` to the neighbours.
    static func page<T: Encodable>(_ items: [T], total: Int, request: Request, page: Pagination) throws -> Response {
        var headers = HTTPFields()
        headers[.init("X-Total-Count")!] = String(total)
        let last = max(1, (total + page.perPage - 1) / page.perPage)
        var links = ["first": 1, "last": last]
        if page.page > 1 { links["prev"] = page.page - 1 }
        if page.page < last { links["next"] = page.page + 1 }
        headers[.init("Link")!] = links.sorted { $0.key < $1.key }.map { rel, n in
            "<\(request.uri.path)?page=\(n)&per_page=\(page.perPage)>; rel=\"\(rel)\""
        }.joined(separator: ", ")
        return try json(items, headers: headers)
    }

    static func id(_ context: ManagerRequestContext) throws -> UInt64 {
        guard let text = context.parameters.get("id"), let id = UInt64(text), id > 0 else {
            throw ManagerError(.invalid, "id must be a positive integer")
        }
        return id
    }

    /// Request bodies are JSON documents of a few KiB; a megabyte is plenty.
    static let maxBodyBytes = 1 << 20

    static func body<T: Decodable>(_ type: T.Type, _ request: Request, _ context: ManagerRequestContext) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw HTTPError(.contentTooLarge, message: "the request body is larger than \(maxBodyBytes) bytes")
        }
        guard buffer.readableBytes > 0 else { throw ManagerError(.invalid, "a JSON body is required") }
        do {
            return try JSONCoding.decoder.decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw ManagerError(.invalid, "invalid JSON body: \(describe(error))")
        } catch {
            throw ManagerError(.invalid, "invalid JSON body")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c):
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? c.debugDescription : "\(path): \(c.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// `?page=` (from 1) and `?per_page=` (1-1000, default 10), as Dragonfly's API takes them.
struct Pagination {
    var page: Int
    var perPage: Int

    init(_ request: Request) throws {
        let q = request.uri.queryParameters
        page = 1
        perPage = 10
        if let p = q["page"] {
            guard let v = Int(p), v >= 1, v <= 1_000_000 else { throw ManagerError(.invalid, "page must be a number from 1") }
            page = v
        }
        if let p = q["per_page"] {
            guard let v = Int(p), (1...1000).contains(v) else { throw ManagerError(.invalid, "per_page must be 1-1000") }
            perPage = v
        }
    }
}

/// Turns every failure into `{"message": …}` with its status, and counts requests.
struct ErrorAndMetricsMiddleware: RouterMiddleware {
    typealias Context = ManagerRequestContext
    let metrics: MetricsRegistry

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = Self.response(for: error, logger: context.logger)
        }
        metrics.counter("rest_request_total", [("method", request.method.rawValue), ("code", String(response.status.code))],
                        help: "REST requests, by method and status").increment()
        return response
    }

    static func response(for error: any Error, logger: Logger) -> Response {
        let status: HTTPResponse.Status
        let message: String
        var headers = HTTPFields()
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
                if let seconds = e.retryAfterSeconds { headers[.retryAfter] = String(seconds) }
            }
            message = e.message
        case let e as HTTPError:
            status = e.status
            message = e.body ?? e.status.reasonPhrase
        default:
            logger.error("request failed: \(error)")
            status = .internalServerError
            message = "internal error"
        }
        if status == .unauthorized { headers[.wwwAuthenticate] = #"Bearer realm="dragonfly""# }
        return (try? REST.json(["message": message], status: status, headers: headers)) ?? Response(status: status)
    }
}

import Logging
