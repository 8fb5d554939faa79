import NIOHTTP1

/// A fixed table of small answers to GET and HEAD (`/metrics`, `/healthy`): served on a
/// listener of their own, or asked first by a responder that serves more.
public struct StaticRoutes: HTTPResponder {
    public struct Response: Sendable {
        public var status: HTTPResponseStatus
        public var contentType: String
        public var body: [UInt8]

        public init(status: HTTPResponseStatus = .ok, contentType: String = "text/plain; charset=utf-8", body: [UInt8]) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }

        public static func text(_ s: String, status: HTTPResponseStatus = .ok) -> Response {
            Response(status: status, body: Array(s.utf8))
        }
    }

    /// Built when asked, so `/metrics` renders the values of the moment.
    public typealias Route = @Sendable () -> Response

    private let routes: [String: Route]

    public init(_ routes: [String: Route]) { self.routes = routes }

    /// The answer for `path` when it is one of the routes.
    public func response(for path: String) -> Response? { routes[path]?() }

    public func respond(to request: HTTPRequest, writer: HTTPResponseWriter) async throws {
        let answer: Response
        if request.method != .GET && request.method != .HEAD {
            answer = .text("method not allowed\n", status: .methodNotAllowed)
        } else {
            answer = response(for: request.path) ?? .text("not found\n", status: .notFound)
        }
        try await Self.write(answer, to: writer)
    }

    /// Writes one whole answer with its length.
    public static func write(_ answer: Response, to writer: HTTPResponseWriter) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: answer.contentType)
        headers.add(name: "Content-Length", value: String(answer.body.count))
        try await writer.writeHead(answer.status, headers: headers)
        try await writer.writeBody(answer.body)
        try await writer.end()
    }
}
