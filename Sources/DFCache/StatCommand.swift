import ArgumentParser
import Foundation
import GeneratedAPI
import TransferCLI

struct StatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stat", abstract: "Describe a persistent cache task as the cluster knows it.")
    @Argument(help: "The task id.") var id: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let task = await client.call { try await $0.statPersistentCacheTask(Dfdaemon_V2_StatPersistentCacheTaskRequest.with { $0.taskId = id }) }
        print(Self.table(task))
    }

    /// The Rust dfcache's columns.
    static func table(_ t: Common_V2_PersistentCacheTask) -> String {
        let header = ["ID", "STATE", "CONTENT LENGTH", "PIECE LENGTH", "PERSISTENT REPLICA COUNT", "REPLICAS", "TTL", "CREATED", "UPDATED"]
        let row = [t.id, t.state, ProgressReporter.size(t.contentLength), ProgressReporter.size(t.pieceLength),
                   "\(t.currentPersistentReplicaCount)/\(t.persistentReplicaCount)", "\(t.currentReplicaCount)",
                   duration(t.ttl?.seconds ?? 0), time(t.createdAt), time(t.updatedAt)]
        let widths = zip(header, row).map { max($0.count, $1.count) }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        return line(header) + "\n" + line(row)
    }

    static func duration(_ seconds: Int64) -> String {
        if seconds % 86_400 == 0 && seconds > 0 { return "\(seconds / 86_400)d" }
        if seconds % 3_600 == 0 && seconds > 0 { return "\(seconds / 3_600)h" }
        if seconds % 60 == 0 && seconds > 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

    static func time(_ ts: Google_Protobuf_Timestamp?) -> String {
        guard let ts else { return "-" }
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(ts.seconds)))
    }
}

struct RemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Delete a persistent cache task from the whole cluster (needs mutual TLS or the cluster's secret on the daemon).")
    @Argument(help: "The task id.") var id: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        _ = await client.call { try await $0.deleteTask(Dfdaemon_V2_DeleteTaskRequest.with { $0.taskId = id }) }
        client.log.info("removed \(id)")
    }
}
