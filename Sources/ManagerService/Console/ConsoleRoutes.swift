import Hummingbird

/// The web console at `/`: one page, a script and a style sheet, compiled into the binary
/// so a copied `manager` needs no resource directory. The script talks only to `/api/v1`
/// with the session cookie the sign-in sets.
enum ConsoleRoutes {
    static func add(to router: Router<ManagerRequestContext>) {
        router.get("/") { _, _ in asset(ConsolePage.html, type: "text/html; charset=utf-8") }
        router.get("/console/app.js") { _, _ in asset(ConsoleScript.source, type: "text/javascript; charset=utf-8") }
        router.get("/console/app.css") { _, _ in asset(ConsoleStyle.css, type: "text/css; charset=utf-8") }
    }

    static func asset(_ text: String, type: String) -> Response {
        var h = HTTPFields()
        h[.contentType] = type
        h[.cacheControl] = "no-cache"
        // Nothing inline and nothing from elsewhere: injected markup cannot run script.
        h[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
        h[.xContentTypeOptions] = "nosniff"
        return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
