import NIOHTTP1

/// The web console at `/`: one page, a script and a style sheet, compiled into the binary
/// so a copied `manager` needs no resource directory. The script talks only to `/api/v1`
/// with the session cookie the sign-in sets.
enum ConsoleRoutes {
    static func add(to routes: RouteTable) {
        routes.get("/") { _, _ in asset(ConsolePage.html, type: "text/html; charset=utf-8") }
        routes.get("/console/app.js") { _, _ in asset(ConsoleScript.source, type: "text/javascript; charset=utf-8") }
        routes.get("/console/app.css") { _, _ in asset(ConsoleStyle.css, type: "text/css; charset=utf-8") }
    }

    static func asset(_ text: String, type: String) -> RESTResponse {
        var response = REST.text(text, type: type)
        response.headers.add(name: "Cache-Control", value: "no-cache")
        // Nothing inline and nothing from elsewhere: injected markup cannot run script.
        response.headers.add(name: "Content-Security-Policy", value: "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        response.headers.add(name: "X-Content-Type-Options", value: "nosniff")
        return response
    }
}
