import Foundation
import Yams

/// A configuration file or a key in it that we cannot use; the message names the key.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A parsed YAML config read by dotted key (`scheduler.retryLimit`), which records the
/// keys it was asked about so unknown keys can be reported instead of silently ignored.
public final class YAMLConfig {
    private let root: [String: Any]
    private var known: Set<String> = []
    public let path: String

    public init(path: String) throws {
        self.path = path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError("cannot read config file \(path)")
        }
        do {
            root = try YAMLTree.root(of: text, name: path)
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError("\(path) is not valid YAML: \(error)")
        }
    }

    /// YAML text; `name` stands for the file in error messages.
    public init(yaml: String, name: String = "<inline>") throws {
        path = name
        do {
            root = try YAMLTree.root(of: yaml, name: name)
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError("\(name) is not valid YAML: \(error)")
        }
    }

    private init(root: [String: Any], path: String) {
        self.root = root
        self.path = path
    }

    /// A list of maps (`proxy.rules: [{regex: …}, …]`), each read as a config of its own;
    /// call `rejectUnknownKeys` on each item too.
    public func sections(_ key: String) throws -> [YAMLConfig]? {
        guard let v = raw(key) else { return nil }
        guard let items = v as? [Any] else { throw ConfigError("\(path): \(key) must be a list") }
        return try items.enumerated().map { i, item in
            guard let map = item as? [String: Any] else { throw ConfigError("\(path): \(key)[\(i)] must be a map") }
            return YAMLConfig(root: map, path: "\(path): \(key)[\(i)]")
        }
    }

    /// A map read as a config of its own (`manager:` in the all-in-one file); its keys are
    /// checked by whoever reads it, with `rejectUnknownKeys` on the section.
    public func section(_ key: String) throws -> YAMLConfig? {
        guard let v = raw(key) else { return nil }
        guard let map = v as? [String: Any] else { throw ConfigError("\(path): \(key) must be a map") }
        return YAMLConfig(root: map, path: "\(path): \(key)")
    }

    private func raw(_ key: String) -> Any? {
        known.insert(key)
        var node: Any? = root
        for part in key.split(separator: ".") {
            node = (node as? [String: Any])?[String(part)]
        }
        return node
    }

    public func string(_ key: String) throws -> String? {
        guard let v = raw(key) else { return nil }
        if let s = v as? String { return s }
        if let i = v as? Int { return String(i) }
        throw ConfigError("\(path): \(key) must be a string")
    }

    public func int(_ key: String) throws -> Int? {
        guard let v = raw(key) else { return nil }
        if let i = v as? Int { return i }
        throw ConfigError("\(path): \(key) must be an integer")
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let v = raw(key) else { return nil }
        if let b = v as? Bool { return b }
        throw ConfigError("\(path): \(key) must be true or false")
    }

    public func strings(_ key: String) throws -> [String]? {
        guard let v = raw(key) else { return nil }
        if let a = v as? [Any] { return a.map { "\($0)" } }
        if let s = v as? String { return [s] }
        throw ConfigError("\(path): \(key) must be a list")
    }

    /// Go-style durations as Dragonfly writes them: "500ms", "30s", "1m30s", "24h".
    public func duration(_ key: String) throws -> Duration? {
        guard let v = raw(key) else { return nil }
        if let s = v as? String, let d = YAMLConfig.parseDuration(s) { return d }
        if let i = v as? Int { return .seconds(i) }
        throw ConfigError("\(path): \(key) must be a duration like 500ms, 30s or 5m")
    }

    /// Marks a section whose contents are read elsewhere (or ignored on purpose) as known.
    public func allow(_ prefix: String) { known.insert(prefix) }

    /// Fails naming the first key the program never asked about.
    public func rejectUnknownKeys() throws {
        func walk(_ node: [String: Any], _ prefix: String) throws {
            for (k, v) in node {
                let full = prefix.isEmpty ? k : prefix + "." + k
                if known.contains(full) { continue }
                if let child = v as? [String: Any], known.contains(where: { $0.hasPrefix(full + ".") }) {
                    try walk(child, full)
                } else {
                    throw ConfigError("\(path): unknown key \(full)")
                }
            }
        }
        try walk(root, "")
    }

    public static func parseDuration(_ text: String) -> Duration? {
        var total: Double = 0
        var number = ""
        var unit = ""
        var any = false
        func flush() -> Bool {
            guard let n = Double(number) else { return false }
            let scale: Double
            switch unit {
            case "ns": scale = 1e-9
            case "us", "µs": scale = 1e-6
            case "ms": scale = 1e-3
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            default: return false
            }
            total += n * scale
            number = ""
            unit = ""
            any = true
            return true
        }
        for c in text.trimmingCharacters(in: .whitespaces) {
            if c.isNumber || c == "." {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(c)
            } else {
                unit.append(c)
            }
        }
        if !number.isEmpty || !unit.isEmpty { guard flush() else { return nil } }
        return any ? .nanoseconds(Int64(total * 1e9)) : nil
    }
}
