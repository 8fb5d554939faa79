import DragonflyCommon
import Foundation
import HTTPServing
import Logging
import ManagerCore
import NIOCore
import NIOHTTP1

/// Per-request state: who is calling, once the route's authenticator has checked.
public struct ManagerRequestContext: Sendable {
    var user: UserRecord?
    var tokenScopes: [String]?
    /// The signed-in session's token, so signing out can revoke exactly it.
    var session: JWTSigner.Claims?
    /// The peer's IP as the socket reports it; forwarded-for headers are ignored, since
    /// anyone can send them and sign-in limits are keyed on this.
    let clientIP: String
    /// The route's `:name` segments, decoded.
    let parameters: [String: String]
    let logger: Logger

    init(clientIP: String, parameters: [String: String], logger: Logger) {
        self.clientIP = clientIP
        self.parameters = parameters
        self.logger = logger
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
    static func json<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok, headers: HTTPHeaders = [:]) throws -> RESTResponse {
        var h = headers
        h.replaceOrAdd(name: "Content-Type", value: "application/json; charset=utf-8")
        return RESTResponse(status: status, headers: h, body: Array(try JSONCoding.encoder.encode(value)))
    }

    static func noContent() -> RESTResponse { RESTResponse(status: .noContent) }

    static func text(_ text: String, type: String) -> RESTResponse {
        RESTResponse(status: .ok, headers: ["Content-Type": type], body: Array(text.utf8))
    }

    /// A page of a list: the items, `X-Total-Count`, and RFC 8288 `Link` to the neighbours.
    static func page<T: Encodable>(_ items: [T], total: Int, request: HTTPRequest, page: Pagination) throws -> RESTResponse {
        var headers = HTTPHeaders()
        headers.add(name: "X-Total-Count", value: String(total))
        let last = max(1, (total + page.perPage - 1) / page.perPage)
        var links = ["first": 1, "last": last]
        if page.page > 1 { links["prev"] = page.page - 1 }
        if page.page < last { links["next"] = page.page + 1 }
        headers.add(name: "Link", value: links.sorted { $0.key < $1.key }.map { rel, n in
            "<\(request.path)?page=\(n)&per_page=\(page.perPage)>; rel=\"\(rel)\""
        }.joined(separator: ", "))
        return try json(items, headers: headers)
    }

    static func id(_ context: ManagerRequestContext) throws -> UInt64 {
        guard let text = context.parameters["id"], let id = UInt64(text), id > 0 else {
            throw ManagerError(.invalid, "id must be a positive integer")
        }
        return id
    }

    /// The body as JSON. Its size is bounded before this by the listener's `maxBodyBytes`
    /// (413 and the connection closed).
    static func body<T: Decodable>(_ type: T.Type, _ request: HTTPRequest) throws -> T {
        guard request.body.readableBytes > 0 else { throw ManagerError(.invalid, "a JSON body is required") }
        do {
            return try JSONCoding.decoder.decode(T.self, from: Data(request.body.readableBytesView))
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

    init(_ request: HTTPRequest) throws {
        page = 1
        perPage = 10
        if let p = request.queryParameter("page") {
            guard let v = Int(p), v >= 1, v <= 1_000_000 else { throw ManagerError(.invalid, "page must be a number from 1") }
            page = v
        }
        if let p = request.queryParameter("per_page") {
            guard let v = Int(p), (1...1000).contains(v) else { throw ManagerError(.invalid, "per_page must be 1-1000") }
            perPage = v
        }
    }
}
