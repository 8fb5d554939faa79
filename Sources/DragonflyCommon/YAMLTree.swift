import Yams

/// Turns a YAML document into plain maps, lists and scalars without `Yams.load`, whose
/// constructor traps on a map key that is not a string (`? [a]: b`, a `!!set` of maps) and
/// recurses without bound. A config file is input we did not write: a key that is a map,
/// nesting past `maxDepth`, or an alias bomb past `maxNodes` is a ConfigError.
enum YAMLTree {
    static let maxDepth = 64
    static let maxNodes = 100_000
    static let maxTextNesting = 1_000

    /// An upper bound on how deep the document can nest, found without parsing it: every
    /// `[` or `{` anywhere (quoted or not, closed or not) plus the deepest line's
    /// indentation and block indicators (`- `, `? `, `: `). Counting brackets without
    /// subtracting closers keeps the bound sound whatever quotes hide; a real config has
    /// a few dozen, far below the limit.
    static func nestingBound(of text: String) -> Int {
        var brackets = 0
        var deepestLine = 0
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            var depth = 0
            var previous = UInt8(ascii: " ")
            var leading = true
            for byte in line {
                if leading && byte == UInt8(ascii: " ") {
                    depth += 1
                    continue
                }
                leading = false
                switch byte {
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    brackets += 1
                case UInt8(ascii: " ") where previous == UInt8(ascii: "-") || previous == UInt8(ascii: "?")
                    || previous == UInt8(ascii: ":"):
                    depth += 1
                default:
                    break
                }
                previous = byte
            }
            deepestLine = max(deepestLine, depth)
        }
        return brackets + deepestLine
    }

    static func root(of text: String, name: String) throws -> [String: Any] {
        // Yams composes recursively, so a document nested thousands deep (`[[[[…` or
        // `- - - - …` on one line) overflows the stack before any check on the tree runs.
        guard nestingBound(of: text) <= maxTextNesting else {
            throw ConfigError("\(name): nests too deep to read safely (more than \(maxTextNesting) brackets and indentation levels)")
        }
        guard let node = try Yams.compose(yaml: text) else { return [:] }
        var budget = maxNodes
        let value = try convert(node, depth: 0, budget: &budget, name: name)
        return value as? [String: Any] ?? [:]
    }

    private static func convert(_ node: Node, depth: Int, budget: inout Int, name: String) throws -> Any {
        guard depth < maxDepth else { throw ConfigError("\(name): nested deeper than \(maxDepth) levels") }
        budget -= 1
        guard budget >= 0 else { throw ConfigError("\(name): more than \(maxNodes) values (aliases expanded)") }
        switch node {
        case .scalar:
            return Constructor.default.any(from: node)
        case .sequence(let items):
            return try items.map { try convert($0, depth: depth + 1, budget: &budget, name: name) }
        case .mapping(let pairs):
            var map: [String: Any] = [:]
            var merged: [[String: Any]] = []
            for (key, value) in pairs {
                guard case .scalar(let scalar) = key else {
                    throw ConfigError("\(name): a map key must be a plain string, not a list or a map")
                }
                let converted = try convert(value, depth: depth + 1, budget: &budget, name: name)
                if key.tag.description == Tag.Name.merge.rawValue {
                    merged += try mergeSources(converted, name: name)
                } else {
                    map[scalar.string] = converted
                }
            }
            // Keys written in the map win over those merged in with `<<`, as YAML 1.1 says.
            for source in merged {
                map.merge(source) { own, _ in own }
            }
            return map
        }
    }

    private static func mergeSources(_ value: Any, name: String) throws -> [[String: Any]] {
        if let map = value as? [String: Any] { return [map] }
        if let list = value as? [Any] {
            return try list.map {
                guard let map = $0 as? [String: Any] else { throw ConfigError("\(name): `<<` merges maps only") }
                return map
            }
        }
        throw ConfigError("\(name): `<<` merges maps only")
    }
}
