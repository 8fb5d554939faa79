import ArgumentParser
import Foundation

/// `--log-level`, as the Rust dfget names its levels.
enum DFGetLogLevel: String, ExpressibleByArgument, Comparable, CaseIterable {
    case trace, debug, info, warn, error

    private var rank: Int {
        switch self {
        case .trace: 0
        case .debug: 1
        case .info: 2
        case .warn: 3
        case .error: 4
        }
    }

    static func < (a: DFGetLogLevel, b: DFGetLogLevel) -> Bool { a.rank < b.rank }
}

/// What dfget says on stderr, filtered by `--log-level`; errors always.
struct DFGetLog: Sendable {
    let level: DFGetLogLevel

    func debug(_ message: @autoclosure () -> String) { say(.debug, message()) }
    func info(_ message: @autoclosure () -> String) { say(.info, message()) }
    func warn(_ message: @autoclosure () -> String) { say(.warn, message()) }

    /// Prints the error and exits with `code`.
    func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("dfget: \(message)\n".utf8))
        exit(code)
    }

    private func say(_ at: DFGetLogLevel, _ message: String) {
        guard at >= level else { return }
        FileHandle.standardError.write(Data("dfget: \(message)\n".utf8))
    }
}
