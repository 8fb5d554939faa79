import DragonflyCommon
import Foundation

/// What `dfdaemon init` (upstream's dfinit) points at the dfdaemon's registry mirror, read
/// from dfinit.yaml in upstream's keys: `proxy.addr` and one `containerRuntime` section
/// (`containerd`, `docker`, `crio` or `podman`).
public struct InitConfig: Sendable, Equatable {
    /// The mirror, as the runtime reaches it (upstream's default port is its proxy's, 4001;
    /// ours is the dfdaemon's one port).
    public var proxyAddress = "http://127.0.0.1:65001"
    public var runtime: Runtime

    public enum Runtime: Sendable, Equatable {
        case containerd(Containerd)
        case docker(configPath: String)
        /// CRI-O and podman share the containers-registries.conf(5) format.
        case registriesConf(RegistriesConf, runtime: String)
    }

    public struct ContainerdRegistry: Sendable, Equatable {
        /// The registry's host namespace, the directory name under certs.d (`docker.io`).
        public var hostNamespace: String
        /// Where the images really are (`https://index.docker.io`), sent to the mirror.
        public var serverAddress: String
        public var capabilities = ["pull", "resolve"]
        public var skipVerify: Bool?
        public var ca: [String] = []
    }

    public struct Containerd: Sendable, Equatable {
        public var configPath = "/etc/containerd/config.toml"
        public var registries: [ContainerdRegistry] = []
        /// A catch-all `_default/hosts.toml`, so every registry goes through the mirror.
        public var proxyAllRegistries = true
    }

    public struct RegistriesConf: Sendable, Equatable {
        public var configPath = "/etc/containers/registries.conf"
        public var unqualifiedSearchRegistries = ["registry.fedoraproject.org", "registry.access.redhat.com", "docker.io"]
        /// (prefix, location): images under `prefix` come from `location`, through the mirror.
        public var registries: [(prefix: String, location: String)] = []

        public static func == (a: RegistriesConf, b: RegistriesConf) -> Bool {
            a.configPath == b.configPath && a.unqualifiedSearchRegistries == b.unqualifiedSearchRegistries
                && a.registries.map(\.prefix) == b.registries.map(\.prefix) && a.registries.map(\.location) == b.registries.map(\.location)
        }
    }

    public init(proxyAddress: String = "http://127.0.0.1:65001", runtime: Runtime) {
        self.proxyAddress = proxyAddress
        self.runtime = runtime
    }

    /// The mirror as `host:port`, for the runtimes that take no scheme.
    public var proxyLocation: String {
        guard let c = URLComponents(string: proxyAddress), let host = c.host else { return proxyAddress }
        let port = c.port ?? (c.scheme == "https" ? 443 : 80)
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    public static func load(path: String) throws -> InitConfig {
        let y = try YAMLConfig(path: path)
        var address = "http://127.0.0.1:65001"
        if let v = try y.string("proxy.addr") { address = v }
        guard let c = URLComponents(string: address), ["http", "https"].contains(c.scheme ?? ""), c.host?.isEmpty == false,
              c.path.isEmpty || c.path == "/", c.query == nil else {
            throw ConfigError("\(path): proxy.addr must be http(s)://host:port, not \(address)")
        }
        // Which runtime is configured, asked of a copy: asking `y` would mark the whole
        // section as read, and its unknown keys would then go unreported.
        let probe = try YAMLConfig(path: path)
        let runtimes = ["containerd", "docker", "crio", "podman"].filter { (try? probe.section("containerRuntime.\($0)")) != nil }
        guard runtimes.count == 1, let name = runtimes.first else {
            throw ConfigError("\(path): containerRuntime needs exactly one of containerd, docker, crio, podman (found \(runtimes))")
        }
        let runtime: Runtime
        switch name {
        case "containerd":
            var d = Containerd()
            if let v = try y.string("containerRuntime.containerd.configPath") { d.configPath = v }
            if let v = try y.bool("containerRuntime.containerd.proxyAllRegistries") { d.proxyAllRegistries = v }
            for (i, r) in (try y.sections("containerRuntime.containerd.registries") ?? []).enumerated() {
                guard let ns = try r.string("hostNamespace"), let server = try r.string("serverAddr") else {
                    throw ConfigError("\(path): containerRuntime.containerd.registries[\(i)] needs hostNamespace and serverAddr")
                }
                guard Self.isPlainName(ns) else {
                    throw ConfigError("\(path): containerRuntime.containerd.registries[\(i)].hostNamespace \(ns) is not a host name")
                }
                var reg = ContainerdRegistry(hostNamespace: ns, serverAddress: server)
                if let v = try r.strings("capabilities") { reg.capabilities = v }
                reg.skipVerify = try r.bool("skipVerify")
                if let v = try r.strings("ca") { reg.ca = v }
                try r.rejectUnknownKeys()
                d.registries.append(reg)
            }
            runtime = .containerd(d)
        case "docker":
            runtime = .docker(configPath: try y.string("containerRuntime.docker.configPath") ?? "/etc/docker/daemon.json")
        default:
            var r = RegistriesConf()
            let key = "containerRuntime.\(name)"
            if let v = try y.string("\(key).configPath") { r.configPath = v }
            if let v = try y.strings("\(key).unqualifiedSearchRegistries") { r.unqualifiedSearchRegistries = v }
            for (i, item) in (try y.sections("\(key).registries") ?? []).enumerated() {
                guard let prefix = try item.string("prefix"), let location = try item.string("location") else {
                    throw ConfigError("\(path): \(key).registries[\(i)] needs prefix and location")
                }
                try item.rejectUnknownKeys()
                r.registries.append((prefix, location))
            }
            runtime = .registriesConf(r, runtime: name)
        }
        try y.rejectUnknownKeys()
        return InitConfig(proxyAddress: address, runtime: runtime)
    }

    /// A registry host name, optionally with a port: the name of a directory we create.
    static func isPlainName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 253 && s != "." && s != ".." && s != "_default"
            && s.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-.:_".unicodeScalars.contains($0) }
            && !s.hasPrefix(".")
    }
}
