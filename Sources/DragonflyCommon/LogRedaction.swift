/// What may be logged of values that can carry credentials.
public enum LogRedaction {
    /// A URL without its user-info and query: signed URLs carry their signature in the
    /// query, and `user:password@` its password.
    public static func url(_ text: String) -> String {
        var s = Substring(text)
        var scheme = Substring("")
        if let r = s.range(of: "://") {
            scheme = s[..<r.upperBound]
            s = s[r.upperBound...]
        }
        let authorityEnd = s.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? s.endIndex
        if let at = s[..<authorityEnd].lastIndex(of: "@") { s = s[s.index(after: at)...] }
        if let q = s.firstIndex(where: { $0 == "?" || $0 == "#" }) { return String(scheme + s[..<q]) + "?…" }
        return String(scheme + s)
    }
}
