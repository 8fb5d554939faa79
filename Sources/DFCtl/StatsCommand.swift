import ArgumentParser
import Foundation

/// `dfctl stats`: where the node's bytes came from, from the dfdaemon's `stats.json`.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Bytes this node got from peers, from origins and from its own cache.")

    @Option(help: "The dfdaemon's stats file (stats.json in its data directory).")
    var file = "/var/lib/dragonfly/stats.json"
    @Flag(help: "Every task's figures too, not only the totals.")
    var tasks = false

    struct Bytes: Decodable { var peer: UInt64; var origin: UInt64; var cache: UInt64 }
    struct File: Decodable { var total: Bytes; var tasks: [String: Bytes] }

    func run() throws {
        let stats: File
        do {
            stats = try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
        } catch {
            FileHandle.standardError.write(Data("dfctl: cannot read \(file): \(error)\n".utf8))
            throw ExitCode(1)
        }
        print(Self.line("total", stats.total))
        if tasks {
            for (id, bytes) in stats.tasks.sorted(by: { $0.key < $1.key }) { print(Self.line(id, bytes)) }
        }
    }

    /// `NAME  peer N  origin N  cache N  peer share P%` (the share of downloaded bytes).
    static func line(_ name: String, _ b: Bytes) -> String {
        let downloaded = Double(b.peer) + Double(b.origin)
        let share = downloaded > 0 ? String(format: "%.1f%%", 100 * Double(b.peer) / downloaded) : "-"
        return "\(name)  peer \(b.peer)  origin \(b.origin)  cache \(b.cache)  peer share \(share)"
    }
}
