/// The console's single HTML page; `app.js` renders each view into `<main>`.
enum ConsolePage {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Dragonfly console</title>
    <link rel="stylesheet" href="/console/app.css">
    <script src="/console/app.js" defer></script>
    </head>
    <body>
    <header>
      <span class="brand">Dragonfly</span>
      <nav id="nav" hidden>
        <a href="#/clusters">Clusters</a>
        <a href="#/jobs">Preheat jobs</a>
        <a href="#/tokens">Access tokens</a>
        <span class="spacer"></span>
        <span id="whoami"></span>
        <button id="signout" type="button">Sign out</button>
      </nav>
    </header>
    <div id="error" role="alert" hidden></div>
    <main id="view"><p>Loading…</p></main>
    <noscript>The Dragonfly console needs JavaScript.</noscript>
    </body>
    </html>
    """#
}
