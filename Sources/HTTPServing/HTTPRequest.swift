import Foundation
import NIOCore
import NIOHTTP1

/// The head of a request, with the URI split into path and query.
public struct HTTPRequest: Sendable {
    public let head: HTTPRequestHead
    public let remoteAddress: SocketAddress?

    public var method: HTTPMethod { head.method }
    public var uri: String { head.uri }
    public var headers: HTTPHeaders { head.headers }

    /// The path, still percent-encoded as sent.
    public var path: String {
        let u = head.uri
        return String(u[..<(u.firstIndex(of: "?") ?? u.endIndex)])
    }

    /// The raw query string after `?`, if any.
    public var query: String? {
        guard let q = head.uri.firstIndex(of: "?") else { return nil }
        return String(head.uri[head.uri.index(after: q)...])
    }

    /// The query's parameters in order, decoded.
    public var queryItems: [(name: String, value: String)] {
        guard let query else { return [] }
        return query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (s: Substring) in String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s) }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    public init(head: HTTPRequestHead, remoteAddress: SocketAddress? = nil) {
        self.head = head
        self.remoteAddress = remoteAddress
    }
}


