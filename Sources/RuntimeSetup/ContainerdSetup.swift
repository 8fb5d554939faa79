import Foundation

/// containerd through the mirror, as upstream's dfinit sets it up: the CRI plugin's
/// registry `config_path` (kept if set, else `/etc/containerd/certs.d`), and under it a
/// `hosts.toml` per registry whose host is the mirror, with the real registry in
/// `X-Dragonfly-Registry`; optionally a `_default` one for every other registry.
public enum ContainerdSetup {
    public static let defaultCertsDirectory = "/etc/containerd/certs.d"
    /// The header our mirror reads the real registry from (upstream's name).
    public static let registryHeader = "X-Dragonfly-Registry"

    /// The CRI plugin that owns the registry settings: containerd 2.x config files say
    /// `version = 3` and keep them in the images plugin; 1.x files (`version = 2`, or none).
    public static func pluginID(forConfig text: String) -> String {
        topLevelVersion(text) == 3 ? "io.containerd.cri.v1.images" : "io.containerd.grpc.v1.cri"
    }

    static func topLevelVersion(_ text: String) -> Int? {
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("[") { return nil }  // past the top-level keys
            guard t.hasPrefix("version") else { continue }
            let rest = t.dropFirst("version".count).trimmingCharacters(in: .whitespaces)
            guard rest.hasPrefix("=") else { continue }
            return Int(rest.dropFirst().split(separator: "#").first?.trimmingCharacters(in: .whitespaces) ?? "")
        }
        return nil
    }

    /// The config with the registry's `config_path` set when it was not, and the directory
    /// the hosts files go in. A `config_path` already there is kept (its first directory).
    public static func editedConfig(_ text: String) -> (text: String, certsDirectory: String) {
        let plugin = pluginID(forConfig: text)
        let header = "[plugins.\"\(plugin)\".registry]"
        var lines = text.isEmpty ? [] : text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        var inTable = false
        var tableLine: Int?
        for (i, line) in lines.enumerated() {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("[") {
                inTable = normalizedHeader(t) == header
                if inTable { tableLine = i }
                continue
            }
            guard inTable, let value = stringValue(of: "config_path", in: t) else { continue }
            if !value.isEmpty {
                let first = value.split(separator: ":").first.map(String.init) ?? value
                return (text, first)
            }
            // An empty config_path: set ours in its place.
            let indent = String(line.prefix { $0 == " " || $0 == "\t" })
            lines[i] = "\(indent)config_path = \"\(defaultCertsDirectory)\""
            return (lines.joined(separator: "\n") + "\n", defaultCertsDirectory)
        }
        if let tableLine {
            lines.insert("  config_path = \"\(defaultCertsDirectory)\"", at: tableLine + 1)
        } else {
            if !lines.isEmpty && lines.last?.isEmpty == false { lines.append("") }
            if topLevelVersion(text) == nil && lines.isEmpty { lines.append("version = 2"); lines.append("") }
            lines.append(header)
            lines.append("  config_path = \"\(defaultCertsDirectory)\"")
        }
        return (lines.joined(separator: "\n") + "\n", defaultCertsDirectory)
    }

    /// `[ plugins . "x" . registry ]` as `[plugins."x".registry]`, comments dropped.
    static func normalizedHeader(_ line: String) -> String {
        var out = ""
        var quoted = false
        for c in line {
            if c == "\"" { quoted.toggle() }
            if !quoted && c == "#" { break }
            if !quoted && (c == " " || c == "\t") { continue }
            out.append(c)
        }
        return out
    }

    /// The string value of `key = "..."` on a line, nil when the line sets something else.
    static func stringValue(of key: String, in line: String) -> String? {
        guard line.hasPrefix(key) else { return nil }
        let rest = line.dropFirst(key.count).trimmingCharacters(in: .whitespaces)
        guard rest.hasPrefix("=") else { return nil }
        let value = rest.dropFirst().trimmingCharacters(in: .whitespaces)
        guard let quote = value.first, quote == "\"" || quote == "'" else { return nil }
        let body = value.dropFirst()
        guard let end = body.firstIndex(of: quote) else { return nil }
        return String(body[..<end])
    }

    /// `hosts.toml` for one registry: its server, and the mirror as the host to pull from.
    public static func hostsFile(for registry: InitConfig.ContainerdRegistry, proxy: String) -> String {
        var out = "server = \(quoted(registry.serverAddress))\n\n[host.\(quoted(proxy))]\n"
        out += "  capabilities = [\(registry.capabilities.map(quoted).joined(separator: ", "))]\n"
        if let skip = registry.skipVerify { out += "  skip_verify = \(skip)\n" }
        if !registry.ca.isEmpty { out += "  ca = [\(registry.ca.map(quoted).joined(separator: ", "))]\n" }
        out += "  [host.\(quoted(proxy)).header]\n    \(registryHeader) = \(quoted(registry.serverAddress))\n"
        return out
    }

    /// `_default/hosts.toml`: any other registry through the mirror (containerd adds `?ns=`).
    public static func defaultHostsFile(proxy: String) -> String {
        "[host.\(quoted(proxy))]\n  capabilities = [\"pull\", \"resolve\"]\n"
    }

    /// A TOML basic string.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    out += "\\u" + String(format: "%04X", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
