import Foundation

extension URLComponents {
    /// `host[:port]`, with IPv6 hosts bracketed: how registries and `ns` name a host.
    public var authority: String {
        let h = host ?? ""
        let bracketed = h.contains(":") && !h.hasPrefix("[") ? "[\(h)]" : h
        return port.map { "\(bracketed):\($0)" } ?? bracketed
    }
}
