import Foundation

/// Bounds on what a preheat may name, the same for the manager's jobs and the scheduler's
/// requests. Each returns why the input is refused, or nil.
public enum PreheatChecks {
    public static let maxURLBytes = 4096
    public static let maxHeaders = 50
    public static let maxHeaderValueBytes = 8192

    /// A file is fetched by URL, so it must be one (http or https, with a host); an image
    /// may also be a reference (`registry/repo:tag`). Neither may carry spaces or controls.
    public static func refusal(url: String, isImage: Bool) -> String? {
        guard url.utf8.count <= maxURLBytes,
              !url.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F })
        else { return "the url must be at most \(maxURLBytes) characters, without spaces or control characters" }
        let parsed = URLComponents(string: url)
        let isHTTP = ["http", "https"].contains(parsed?.scheme?.lowercased() ?? "") && !(parsed?.host ?? "").isEmpty
        if !isImage && !isHTTP { return "\(url) is not an http(s) URL" }
        if isImage && !isHTTP && url.contains("://") { return "\(url): an image is an http(s) manifest URL or a reference" }
        return nil
    }

    /// Header names are HTTP tokens and values single lines: nothing a preheat passes on
    /// can split a request.
    public static func refusal(headers: [String: String]) -> String? {
        guard headers.count <= maxHeaders else { return "more than \(maxHeaders) headers" }
        let token = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".unicodeScalars)
        for (name, value) in headers {
            guard !name.isEmpty, name.unicodeScalars.allSatisfy(token.contains) else {
                return "\(name.debugDescription) is not a valid header name"
            }
            guard value.utf8.count <= maxHeaderValueBytes,
                  !value.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7F }) else {
                return "the value of \(name) must be one line of at most \(maxHeaderValueBytes) bytes"
            }
        }
        return nil
    }
}
