import DragonflyCommon
import Foundation

/// The one rule for every URL the dfdaemon fetches on someone's behalf (downloads, the
/// mirror's upstreams and token realms, each redirect hop): an http(s) URL whose host is in
/// `download.allowedOrigins` (when set) and whose addresses the address policy accepts.
public struct OriginPolicy: Sendable, Equatable {
    public var allowList = OriginAllowList()
    public var addresses = OriginAddressPolicy()

    public init(allowList: OriginAllowList = OriginAllowList(), addresses: OriginAddressPolicy = OriginAddressPolicy()) {
        self.allowList = allowList
        self.addresses = addresses
    }

    /// Nil when `url` may be fetched; otherwise why not.
    public func refusal(for url: String) async -> String? {
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = c.host, !host.isEmpty else {
            return "\(LogRedaction.url(url)) is not an http(s) URL with a host"
        }
        if let why = allowList.refusal(for: url) { return why }
        return await addresses.refusal(forHost: host)
    }
}
