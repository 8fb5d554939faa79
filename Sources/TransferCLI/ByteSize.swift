import Foundation

/// Sizes as users of the Rust dfget write them: `4194304`, `4mib`, `4MiB`, `1gib`, `512kb`.
public enum ByteSize {
    private static let units: [(String, UInt64)] = [
        ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("tib", 1 << 40),
        ("kb", 1_000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("tb", 1_000_000_000_000),
        ("ki", 1 << 10), ("mi", 1 << 20), ("gi", 1 << 30), ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("b", 1),
    ]

    /// nil for anything else, or a size past UInt64.
    public static func parse(_ text: String) -> UInt64? {
        let lower = text.trimmingCharacters(in: .whitespaces).lowercased()
        for (suffix, factor) in units where lower.hasSuffix(suffix) {
            let number = lower.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard let value = UInt64(number) else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: factor)
            return overflow ? nil : product
        }
        return UInt64(lower)
    }
}
