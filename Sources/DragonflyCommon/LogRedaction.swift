import Foundation

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

extension LogRedaction {
    /// Header names that always carry a credential, whatever their value looks like.
    public static let credentialHeaders: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
    ]

    /// Query parameters of signed URLs (S3, GCS, Azure SAS, CloudFront) that are the
    /// signature or grant access on their own.
    public static let signedQueryParameters: Set<String> = [
        "x-amz-signature", "x-amz-credential", "x-amz-security-token", "signature", "x-goog-signature",
        "x-goog-credential", "sig", "key-pair-id", "access_token",
    ]

    /// Whether a field, header or parameter of this name holds a credential: the known
    /// headers, and any name mentioning token, secret, password, key or auth. Deliberately
    /// broad: showing a harmless value masked costs less than leaking one that is not.
    public static func isCredentialName(_ name: String) -> Bool {
        let n = name.lowercased()
        if credentialHeaders.contains(n) || signedQueryParameters.contains(n) { return true }
        return ["token", "secret", "password", "passwd", "key", "auth", "credential", "signature", "cookie"]
            .contains { n.contains($0) }
    }

    public static let mask = "******"

    /// The URL with its credentials masked but its shape kept, for people to recognise:
    /// the whole user-info (`user:password@`, and `token@`, where services put a token as
    /// the user name), and the value of every query parameter whose name, percent-decoded,
    /// `isCredentialName` flags. Text that is not a URL with a query or user-info comes back
    /// unchanged.
    public static func maskingCredentials(inURL text: String) -> String {
        var s = Substring(text)
        var head = Substring("")
        if let r = s.range(of: "://") {
            head = s[..<r.upperBound]
            s = s[r.upperBound...]
            let authorityEnd = s.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? s.endIndex
            if let at = s[..<authorityEnd].lastIndex(of: "@") {
                head += mask + "@"
                s = s[s.index(after: at)...]
            }
        }
        guard let q = s.firstIndex(of: "?") else { return String(head + s) }
        let fragmentStart = s[q...].firstIndex(of: "#") ?? s.endIndex
        let query = s[s.index(after: q)..<fragmentStart].split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).replacingOccurrences(of: "+", with: " ")
            guard parts.count == 2, isCredentialName(name.removingPercentEncoding ?? name) else { return String(pair) }
            return parts[0] + "=" + mask
        }.joined(separator: "&")
        return String(head + s[...q]) + query + String(s[fragmentStart...])
    }
}
