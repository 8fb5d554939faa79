import ArgumentParser
import Foundation
import GeneratedAPI
import RPCCore
import RPCTransport

/// The Rust client's `dfctl` for what a node holds: its local tasks, listed, described and
/// removed through the dfdaemon's unix socket (DfdaemonDownload's local-task methods).
@main
struct DFCtlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dfctl",
        abstract: "Manage the tasks a dfdaemon holds on this node.",
        discussion: "Exit status: 0 done; 1 the daemon refused or could not be reached; 2 bad usage.",
        subcommands: [TaskCommand.self, StatsCommand.self])
}

struct TaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task", abstract: "Local tasks: ls, stat, rm.",
        subcommands: [ListTasks.self, StatTask.self, RemoveTask.self])
}

/// Where the daemon listens, as the Rust dfctl takes it.
struct Endpoint: ParsableArguments {
    @Option(name: [.customShort("e"), .long], help: "The dfdaemon's unix socket, or host:port for one serving DfdaemonDownload over TLS.")
    var endpoint = "/var/run/dragonfly/dfdaemon.sock"

    func client() throws -> (Dfdaemon_V2_DfdaemonDownloadClient, RPCChannel) {
        let address = endpoint.hasPrefix("/") ? "unix:" + endpoint : endpoint
        var configuration = try RPCClientConfiguration.parse(address)
        configuration.connectTimeout = .seconds(5)
        let channel = try RPCChannel(configuration: configuration)
        return (Dfdaemon_V2_DfdaemonDownloadClient(RPCClient(transport: channel)), channel)
    }
}

/// Runs one call; a refusal is printed and exits 1.
func call<T: Sendable>(_ endpoint: Endpoint, _ body: (Dfdaemon_V2_DfdaemonDownloadClient) async throws -> T) async throws -> T {
    let (client, channel) = try endpoint.client()
    defer { Task { await channel.close() } }
    do {
        return try await body(client)
    } catch let error as RPCError {
        FileHandle.standardError.write(Data("dfctl: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

struct ListTasks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the tasks this node holds.")
    @OptionGroup var endpoint: Endpoint

    func run() async throws {
        let response = try await call(endpoint) { try await $0.listLocalTasks(Dfdaemon_V2_ListLocalTasksRequest()) }
        print(TaskTable.render(response.tasks))
    }
}

struct StatTask: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stat", abstract: "Describe one local task.")
    @OptionGroup var endpoint: Endpoint
    @Argument(help: "The task id.") var id: String

    func run() async throws {
        let task = try await call(endpoint) { try await $0.statLocalTask(Dfdaemon_V2_StatLocalTaskRequest.with { $0.taskId = id }) }
        print(TaskTable.render([task]))
    }
}

struct RemoveTask: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a task from this node's store.")
    @OptionGroup var endpoint: Endpoint
    @Argument(help: "The task id.") var id: String

    func run() async throws {
        _ = try await call(endpoint) { try await $0.deleteLocalTask(Dfdaemon_V2_DeleteLocalTaskRequest.with { $0.taskId = id }) }
        print("removed \(id)")
    }
}
