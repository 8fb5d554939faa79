/// A regular expression from a config file or an API client (proxy rules, cluster
/// scopes), compiled by Swift's own regex engine. Not NSRegularExpression: on Linux its ICU
/// compile leaks the pattern buffer whenever a pattern is invalid, so every bad pattern a
/// client sends would cost the server memory (found by the config fuzz target).
///
/// `@unchecked`: `Regex<AnyRegexOutput>` is not `Sendable` only because its match output
/// holds `Any` values; the compiled program is immutable (its lowering is published
/// atomically), and nothing here hands a match output to another task.
public struct PatternRegex: @unchecked Sendable {
    public let pattern: String
    private let regex: Regex<AnyRegexOutput>

    public init(_ pattern: String) throws {
        regex = try Regex(pattern)
        self.pattern = pattern
    }

    /// Whether the pattern matches anywhere in `text`.
    public func matches(_ text: String) -> Bool {
        (try? regex.firstMatch(in: text)) != nil
    }

    public static func isValid(_ pattern: String) -> Bool { (try? PatternRegex(pattern)) != nil }
}
