import ArgumentParser
import Foundation

/// `--log-level`, as the Rust dfget and dfcache name their levels.
public enum ClientLogLevel: String, ExpressibleByArgument, Comparable, CaseIterable, Sendable {
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

    public static func < (a: ClientLogLevel, b: ClientLogLevel) -> Bool { a.rank < b.rank }
}

/// What a client (dfget, dfcache) says on stderr, each line led by its name, filtered by
/// `--log-level`; errors always.
public struct ClientLog: Sendable {
    public let program: String
    public let level: ClientLogLevel

    public init(program: String, level: ClientLogLevel) {
        self.program = program
        self.level = level
    }

    public func debug(_ message: @autoclosure () -> String) { say(.debug, message()) }
    public func info(_ message: @autoclosure () -> String) { say(.info, message()) }
    public func warn(_ message: @autoclosure () -> String) { say(.warn, message()) }

    /// Prints the error and exits with `code`.
    public func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("\(program): \(message)\n".utf8))
        exit(code)
    }

    private func say(_ at: ClientLogLevel, _ message: String) {
        guard at >= level else { return }
        FileHandle.standardError.write(Data("\(program): \(message)\n".utf8))
    }
}
