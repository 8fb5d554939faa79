import DragonflyCommon
import Foundation
import HTTPServing
import Logging
import NIOCore
import NIOHTTP1
import Testing
@testable import ManagerService

/// The manager's router without sockets: which route a path reaches, what it is given, and
/// what an unmatched request gets.
@Suite struct RESTRouterTests {
    func router() -> RESTRouter {
        let routes = RouteTable()
        let api = routes.group("api/v1")
        // Added parameter-first on purpose: the literal must still win.
        api.get("users/:id") { _, context in REST.text("user \(context.parameters["id"] ?? "?")", type: "text/plain") }
        api.get("users/me") { _, _ in REST.text("me", type: "text/plain") }
        api.delete("users/:id") { _, _ in REST.noContent() }
        api.post("jobs") { request, _ in
            struct Input: Decodable { var type: String }
            return REST.text("job \(try REST.body(Input.self, request).type)", type: "text/plain")
        }
        routes.get("/healthy") { _, _ in REST.text("OK", type: "text/plain") }
        return routes.router(metrics: MetricsRegistry(prefix: "test"), logger: Logger(label: "test"))
    }

    func request(_ method: HTTPMethod, _ uri: String, body: String = "") -> HTTPRequest {
        HTTPRequest(head: HTTPRequestHead(version: .http1_1, method: method, uri: uri), body: ByteBuffer(string: body))
    }

    func answer(_ method: HTTPMethod, _ uri: String, body: String = "") async -> RESTResponse {
        let router = router()
        do {
            return try await router.dispatch(request(method, uri, body: body))
        } catch {
            return RESTErrors.response(for: error, logger: Logger(label: "test"))
        }
    }

    func text(_ r: RESTResponse) -> String { String(decoding: r.body, as: UTF8.self) }

    @Test func literalSegmentsWinOverParametersWhateverTheOrder() async {
        #expect(text(await answer(.GET, "/api/v1/users/me")) == "me")
        #expect(text(await answer(.GET, "/api/v1/users/42")) == "user 42")
    }

    @Test func parametersArePercentDecodedAndQueriesIgnoredForMatching() async {
        #expect(text(await answer(.GET, "/api/v1/users/a%20b?page=2")) == "user a b")
        #expect(text(await answer(.GET, "//api//v1/users/7/")) == "user 7")
    }

    @Test func headIsAnsweredByTheGetRoute() async {
        let r = await answer(.HEAD, "/healthy")
        #expect(r.status == .ok)
        #expect(text(r) == "OK")
    }

    @Test func aKnownPathWithAnotherMethodGets405WithAllow() async {
        let r = await answer(.PUT, "/api/v1/users/5")
        #expect(r.status == .methodNotAllowed)
        #expect(r.headers.first(name: "Allow") == "GET, DELETE")
    }

    @Test func anUnknownPathGets404AsJSON() async throws {
        for uri in ["/api/v1/users", "/api/v1/users/1/2", "/nope", "/api/v1/users/%"] {
            let r = await answer(.GET, uri)
            #expect(r.status == .notFound, "\(uri)")
            let body = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: String]
            #expect(body?["message"]?.isEmpty == false)
        }
    }

    @Test func bodiesAreDecodedAndBadOnesRefusedWith400() async {
        #expect(text(await answer(.POST, "/api/v1/jobs", body: #"{"type":"preheat"}"#)) == "job preheat")
        let empty = await answer(.POST, "/api/v1/jobs")
        #expect(empty.status == .badRequest)
        let wrong = await answer(.POST, "/api/v1/jobs", body: #"{"type":3}"#)
        #expect(wrong.status == .badRequest)
        #expect(text(wrong).contains("type"))
    }

    @Test func unexpectedErrorsAreAnswered500WithoutDetail() {
        struct Secret: Error {}
        let r = RESTErrors.response(for: Secret(), logger: Logger(label: "test"))
        #expect(r.status == .internalServerError)
        #expect(!text(r).contains("Secret"))
    }
}
