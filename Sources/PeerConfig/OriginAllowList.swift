import Foundation

/// `download.allowedOrigins`: when set, the only hosts this daemon fetches from. Entries
/// are `host`, `host:port` or `*.domain` (any subdomain, any port).
public struct OriginAllowList: Sendable, Equatable {
    public var entries: [String]

    public init(_ entries: [String] = []) { self.entries = entries.map { $0.lowercased() } }

    public var isOpen: Bool { entries.isEmpty }

    /// Nil when `url` may be fetched; otherwise why not.
    public func refusal(for url: String) -> String? {
        guard !isOpen else { return nil }
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(), let host = c.host?.lowercased(), !host.isEmpty else {
            return "\(url) has no host to check against download.allowedOrigins"
        }
        let port = c.port ?? (scheme == "https" ? 443 : 80)
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        for entry in entries {
            if entry.hasPrefix("*.") {
                if bare.hasSuffix(entry.dropFirst(1)) { return nil }
            } else if entry == bare || entry == "\(bare):\(port)" || entry == "[\(bare)]:\(port)" {
                return nil
            }
        }
        return "origin \(bare):\(port) is not in download.allowedOrigins"
    }
}
