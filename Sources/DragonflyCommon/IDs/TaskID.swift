/// Task ids as Dragonfly's Rust client computes them, so our peers and theirs agree on
/// which downloads are the same task.
public enum TaskID {
    /// SHA-256 over the URL (signature-like query parameters filtered out), tag,
    /// application, revision, piece length in decimal and the task type name, with no
    /// separators; absent parts add nothing.
    public static func standard(url: String, tag: String? = nil, application: String? = nil, revision: String? = nil,
                                pieceLength: UInt64? = nil, filteredQueryParams: [String] = []) throws(ConfigError) -> String {
        var preimage = try URLFilter.filter(url, removing: filteredQueryParams)
        preimage += tag ?? ""
        preimage += application ?? ""
        preimage += revision ?? ""
        if let pieceLength { preimage += String(pieceLength) }
        preimage += "STANDARD"
        return Hashing.sha256Hex(Array(preimage.utf8))
    }

    /// True for what a task id can be: 1 to 128 lowercase hex digits. Ids name files in the
    /// store, so one taken from a request is checked before anything is named after it.
    public static func isWellFormed(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128 && id.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// For a registry blob URL (`…/v2/<name>/blobs/<alg>:<hex>`) the id is the digest's hex.
    public static func blobDigest(url: String) -> String? {
        blobDigestOf(url: url)?.encoded
    }

    /// The digest a registry blob URL names (`…/v2/<name>/blobs/<alg>:<hex>[?…]`).
    public static func blobDigestOf(url: String) -> ContentDigest? {
        guard let scheme = url.range(of: "://"), let v2 = url.range(of: "/v2/", range: scheme.upperBound..<url.endIndex),
              let r = url.range(of: "/blobs/", options: .backwards), r.lowerBound > v2.upperBound else { return nil }
        var digest = String(url[r.upperBound...])
        if let q = digest.firstIndex(of: "?") { digest = String(digest[..<q]) }
        guard let d = try? ContentDigest(parsing: digest), d.algorithm != .crc32 else { return nil }
        return d
    }

    /// `content_for_calculating_task_id`: the id is the SHA-256 of that text alone.
    public static func content(_ text: String) -> String {
        Hashing.sha256Hex(Array(text.utf8))
    }

    /// A persistent task's id, as upstream's id generator makes it: SHA-256 over the URL,
    /// the object storage's region and endpoint (empty for an HTTP(S) origin), then
    /// `PERSISTENT`.
    public static func persistent(url: String, region: String = "", endpoint: String = "") -> String {
        Hashing.sha256Hex(Array((url + region + endpoint + "PERSISTENT").utf8))
    }
}

/// Dragonfly's URL canonicalisation for task ids: with nothing to filter the URL is used
/// as given; otherwise it is normalised, the named query parameters dropped, the rest
/// sorted by key and re-escaped like Go's `url.QueryEscape`.
public enum URLFilter {
    public static func filter(_ url: String, removing params: [String]) throws(ConfigError) -> String {
        guard !params.isEmpty else { return url }
        guard let schemeEnd = url.range(of: "://"), !url[..<schemeEnd.lowerBound].isEmpty,
              url[..<schemeEnd.lowerBound].allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) else {
            throw ConfigError("cannot parse URL \(url)")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        var rest = Substring(url[schemeEnd.upperBound...])
        var fragment: Substring?
        if let hash = rest.firstIndex(of: "#") {
            fragment = rest[rest.index(after: hash)...]
            rest = rest[..<hash]
        }
        var query: Substring?
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        var authority = rest[..<slash].lowercased()
        var path = String(rest[slash...])
        if path.isEmpty { path = "/" }
        if scheme == "http", authority.hasSuffix(":80") { authority.removeLast(3) }
        if scheme == "https", authority.hasSuffix(":443") { authority.removeLast(4) }
        guard !authority.isEmpty else { throw ConfigError("cannot parse URL \(url): no host") }

        var pairs: [(String, String)] = []
        for segment in (query ?? "").split(separator: "&", omittingEmptySubsequences: true) where !segment.contains(";") {
            let kv = segment.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = formDecode(kv[0]), value = kv.count > 1 ? formDecode(kv[1]) : ""
            if !params.contains(key) { pairs.append((key, value)) }
        }
        // Stable sort: equal keys keep their order.
        let sorted = pairs.enumerated().sorted { a, b in
            a.element.0 != b.element.0 ? Array(a.element.0.utf8).lexicographicallyPrecedes(Array(b.element.0.utf8)) : a.offset < b.offset
        }.map(\.element)
        var out = "\(scheme)://\(authority)\(path)"
        if !sorted.isEmpty { out += "?" + sorted.map { queryEscape($0.0) + "=" + queryEscape($0.1) }.joined(separator: "&") }
        if let fragment { out += "#" + fragment }
        if path == "/" && fragment == nil && sorted.isEmpty {
            while out.hasSuffix("/") { out.removeLast() }
        }
        return out
    }

    static func formDecode(_ s: Substring) -> String {
        var out = [UInt8]()
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "+") { out.append(0x20); i += 1; continue }
            if b[i] == UInt8(ascii: "%"), i + 2 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
                out.append(v)
                i += 3
                continue
            }
            out.append(b[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Go's `url.QueryEscape`: unreserved bytes kept, space as '+', the rest %XX.
    static func queryEscape(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: " "):
                out += "+"
            default:
                let hex = String(b, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}
