import Foundation

/// What an HTTP server's generated directory index (Apache's mod_autoindex, nginx's
/// autoindex, `python3 -m http.server`) lists: its links, read as the children of the
/// directory. Index pages are the origin's and so hostile: a link only counts when it
/// stays on the listed server and inside the listed directory.
enum DirectoryIndex {
    /// Every `href` value in `html`, in order, with the few entities indexes use decoded.
    static func hrefs(in html: String) -> [String] {
        let bytes = Array(html.utf8)
        var out: [String] = []
        var i = 0
        func lower(_ b: UInt8) -> UInt8 { (b >= 65 && b <= 90) ? b + 32 : b }
        func isSpace(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 || b == 12 }
        while i + 4 < bytes.count {
            guard lower(bytes[i]) == 104, lower(bytes[i + 1]) == 114, lower(bytes[i + 2]) == 101, lower(bytes[i + 3]) == 102,
                  i == 0 || isSpace(bytes[i - 1]) else {
                i += 1
                continue
            }
            var j = i + 4
            while j < bytes.count, isSpace(bytes[j]) { j += 1 }
            guard j < bytes.count, bytes[j] == 61 else { i = j; continue }  // '='
            j += 1
            while j < bytes.count, isSpace(bytes[j]) { j += 1 }
            guard j < bytes.count else { break }
            let start: Int, end: Int
            if bytes[j] == 34 || bytes[j] == 39 {  // a quoted value
                let quote = bytes[j]
                start = j + 1
                var k = start
                while k < bytes.count, bytes[k] != quote { k += 1 }
                end = k
            } else {
                start = j
                var k = start
                while k < bytes.count, !isSpace(bytes[k]), bytes[k] != 62 { k += 1 }  // '>'
                end = k
            }
            if let value = String(bytes: bytes[start..<min(end, bytes.count)], encoding: .utf8) { out.append(decodeEntities(value)) }
            i = end + 1
        }
        return out
    }

    private static func decodeEntities(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&#x27;", with: "'").replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
    }

    /// The entries an index page at `page` lists inside `root` (a directory URL ending in
    /// `/`): absolute URLs, directories ending in `/`. Links that leave the server or the
    /// directory (`../`, `/elsewhere`, another host), sort links (`?C=N;O=D`), anchors,
    /// and anything with a query are not entries.
    static func entries(of page: URL, html: String, under root: URL) -> [URL] {
        var seen = Set<String>()
        var out: [URL] = []
        for href in hrefs(in: html) {
            guard !href.isEmpty, !href.hasPrefix("?"), !href.hasPrefix("#"), !href.contains("?"), !href.contains("#") else { continue }
            guard let resolved = URL(string: href, relativeTo: page)?.absoluteURL.standardized,
                  let entry = URLComponents(url: resolved, resolvingAgainstBaseURL: false),
                  let base = URLComponents(url: root, resolvingAgainstBaseURL: false) else { continue }
            guard entry.scheme?.lowercased() == base.scheme?.lowercased(), entry.host?.lowercased() == base.host?.lowercased(),
                  entry.port == base.port, entry.user == nil, entry.password == nil else { continue }
            let path = entry.percentEncodedPath
            guard path.count > base.percentEncodedPath.count, path.hasPrefix(base.percentEncodedPath) else { continue }
            // `.`, `..` and empty segments were resolved away; what is left must name things.
            let relative = path.dropFirst(base.percentEncodedPath.count)
            guard !relative.split(separator: "/", omittingEmptySubsequences: false).dropLast(path.hasSuffix("/") ? 1 : 0)
                .contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else { continue }
            if seen.insert(resolved.absoluteString).inserted { out.append(resolved) }
        }
        return out
    }
}
