import Foundation
import NIOCore
import NIOHTTP1

/// A request: its head, with the URI split into path and query, and its body (read whole
/// before the responder is asked, when `HTTPLimits.keepsBodies`; else empty).
public struct HTTPRequest: Sendable {
    public let head: HTTPRequestHead
    public let remoteAddress: SocketAddress?
    public let body: ByteBuffer

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

    /// The first value of query parameter `name`, decoded.
    public func queryParameter(_ name: String) -> String? {
        queryItems.first { $0.name == name }?.value
    }

    public init(head: HTTPRequestHead, remoteAddress: SocketAddress? = nil, body: ByteBuffer = ByteBuffer()) {
        self.head = head
        self.remoteAddress = remoteAddress
        self.body = body
    }
}


