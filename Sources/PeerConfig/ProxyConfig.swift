import DragonflyCommon
import Foundation

/// The registry mirror and proxy settings (`proxy:` in the dfdaemon config). Keys follow
/// Dragonfly's Rust client (`rules[].regex`); the Go client's `proxies[].regx` is read too.
public struct ProxyConfig: Sendable {
    /// Which requests become P2P tasks.
    public struct Rule: Sendable {
        public var regex: String
        /// Fetch the upstream over HTTPS even when the request came as plain HTTP.
        public var useTLS = false
        /// Send matching requests to this host instead of the one asked for.
        public var redirect: String?
        public var filteredQueryParams: [String] = []

        public init(regex: String) { self.regex = regex }
    }

    /// Credentials and TLS trust for one upstream registry.
    public struct Registry: Sendable {
        public var url: String
        public var username: String?
        public var password: String?
        public var insecure = false
        /// Another name requests may use for this registry (`ns=<alias>`); the URL's own
        /// `host[:port]` always works.
        public var alias: String?

        public init(url: String) { self.url = url }

        /// The `host[:port]` of the URL.
        public var host: String { URLComponents(string: url).map(\.authority) ?? url }

        /// Whether a request naming `name` means this registry.
        public func isNamed(_ name: String) -> Bool { name == host || name == alias }
    }

    public var enabled = true
    /// The default upstream for `/v2/` requests.
    public var registryMirrorURL = "https://index.docker.io"
    /// Whether `?ns=` and `X-Dragonfly-Registry` may name registries not configured here.
    public var dynamic = false
    public var registryMirrorInsecure = false
    public var rules = [Rule(regex: "blobs/sha256.*")]
    public var registries: [Registry] = []
    public var allowConnect = false
    /// `proxy.registryMirror.enableTaskIDBasedBlobDigest`: a blob's task id is its digest,
    /// so one layer pulled through two registries or mirror paths is one task. Upstream's
    /// default is off; ours is on.
    public var taskIDBasedBlobDigest = true
    /// `proxy.prefetch`: a ranged request also fetches the rest of the task afterwards, so
    /// the next range is local. Upstream's default is off; ours is on, as the mirror cached
    /// whole blobs before it served ranges from their pieces.
    public var prefetch = true

    public init() {}

    /// `host[:port]` of every upstream whose TLS certificate is not to be checked.
    public var insecureHosts: Set<String> {
        var hosts = Set(registries.filter(\.insecure).map(\.host))
        if registryMirrorInsecure, let c = URLComponents(string: registryMirrorURL) { hosts.insert(c.authority) }
        return hosts
    }

    /// Reads `proxy.*` from a dfdaemon config.
    mutating func load(_ y: YAMLConfig) throws {
        if let v = try y.bool("proxy.enable") { enabled = v }
        if let v = try y.string("proxy.registryMirror.addr") ?? y.string("proxy.registryMirror.url") { registryMirrorURL = v }
        if let v = try y.bool("proxy.registryMirror.dynamic") { dynamic = v }
        if let v = try y.bool("proxy.registryMirror.insecure") { registryMirrorInsecure = v }
        if let v = try y.bool("proxy.allowConnect") { allowConnect = v }
        if let v = try y.bool("proxy.registryMirror.enableTaskIDBasedBlobDigest") { taskIDBasedBlobDigest = v }
        if let v = try y.bool("proxy.prefetch") { prefetch = v }
        var loaded: [Rule]?
        for (key, regexKey) in [("proxy.rules", "regex"), ("proxy.proxies", "regx")] {
            guard let items = try y.sections(key) else { continue }
            loaded = (loaded ?? []) + (try items.map { item in
                guard let regex = try item.string(regexKey) ?? item.string("regex") else {
                    throw ConfigError("\(item.path): \(regexKey) is required")
                }
                guard PatternRegex.isValid(regex) else {
                    throw ConfigError("\(item.path): \(regex) is not a valid regular expression")
                }
                var rule = Rule(regex: regex)
                if let v = try item.bool("useTLS") ?? item.bool("useHTTPS") { rule.useTLS = v }
                if let v = try item.string("redirect") { rule.redirect = v.isEmpty ? nil : v }
                if let v = try item.strings("filteredQueryParams") { rule.filteredQueryParams = v }
                try item.rejectUnknownKeys()
                return rule
            })
        }
        if let loaded { rules = loaded }
        if let items = try y.sections("proxy.registries") {
            registries = try items.map { item in
                guard let url = try item.string("url") else { throw ConfigError("\(item.path): url is required") }
                guard URLComponents(string: url)?.host != nil else { throw ConfigError("\(item.path): \(url) is not a URL") }
                var r = Registry(url: url)
                r.username = try item.string("username")
                r.password = try item.string("password")
                if let v = try item.bool("insecure") { r.insecure = v }
                r.alias = try item.string("host")
                try item.rejectUnknownKeys()
                return r
            }
        }
        guard URLComponents(string: registryMirrorURL)?.host != nil else {
            throw ConfigError("\(y.path): proxy.registryMirror.url \(registryMirrorURL) is not a URL")
        }
    }
}
