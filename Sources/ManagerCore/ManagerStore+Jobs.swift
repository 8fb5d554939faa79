import Foundation
import SQLStore

/// A job request as Dragonfly's API takes it: `type` (`preheat`, …), free-form `args`,
/// and the scheduler clusters to run in (all when empty).
public struct JobInput: Codable, Sendable {
    public init() {}
    public var type: String?
    public var bio: String?
    public var args: JSONValue?
    public var scheduler_cluster_ids: [UInt64]?
    public var user_id: UInt64?
}

public enum JobState: String, Sendable {
    case pending = "PENDING", running = "RUNNING", success = "SUCCESS", failure = "FAILURE"
}

extension ManagerStore {
    public static let jobTypes: Set<String> = ["preheat", "sync_peers", "get_task", "delete_task"]

    public func createJob(_ input: JobInput, userID: UInt64?) async throws -> JobRecord {
        guard let type = input.type, Self.jobTypes.contains(type) else {
            throw ManagerError(.invalid, "type must be one of \(Self.jobTypes.sorted().joined(separator: ", "))")
        }
        let args = input.args ?? .emptyObject
        guard case .object = args else { throw ManagerError(.invalid, "args must be an object") }
        if type == "preheat" {
            let url = args["url"]?.stringValue ?? ""
            let urls = args["urls"]?.arrayValue ?? []
            guard !url.isEmpty || !urls.isEmpty else { throw ManagerError(.invalid, "preheat args need url (or urls)") }
        }
        let clusters = input.scheduler_cluster_ids ?? []
        for id in clusters { _ = try await schedulerCluster(id) }
        return JobRecord(row: try await insert("jobs", [
            ("type", .text(type)), ("bio", .text(input.bio ?? "")), ("state", .text(JobState.pending.rawValue)),
            ("args", .text(args.text)), ("user_id", userID.map { SQLValue($0) } ?? .null),
            ("scheduler_cluster_ids", .text(Self.json(clusters))),
        ], what: "job"))
    }

    public func jobs(page: Int, perPage: Int, type: String? = nil, state: String? = nil) async throws -> ([JobRecord], Int) {
        var conditions: [(String, SQLValue)] = []
        if let type { conditions.append(("type", .text(type))) }
        if let state { conditions.append(("state", .text(state))) }
        let (rows, total) = try await self.page("jobs", where: conditions, page: page, perPage: perPage)
        return (rows.map(JobRecord.init(row:)), total)
    }

    public func job(_ id: UInt64) async throws -> JobRecord {
        JobRecord(row: try await row("jobs", id: id, what: "job"))
    }

    public func updateJob(_ id: UInt64, state: JobState, result: JSONValue? = nil, taskID: String? = nil) async throws -> JobRecord {
        var values: [(String, SQLValue)] = [("state", .text(state.rawValue))]
        if let result { values.append(("result", .text(result.text))) }
        if let taskID { values.append(("task_id", .text(taskID))) }
        return JobRecord(row: try await update("jobs", id: id, values, what: "job"))
    }

    /// Jobs of `type` in `state`, oldest first (what a job runner picks up).
    public func jobs(type: String, state: JobState) async throws -> [JobRecord] {
        try await db.query("SELECT * FROM jobs WHERE type = $1 AND state = $2 ORDER BY id", [.text(type), .text(state.rawValue)])
            .map(JobRecord.init(row:))
    }

    /// Moves a job from `from` to RUNNING; false when another runner (a second manager on
    /// the same database) took it first.
    public func claimJob(_ id: UInt64, from: JobState) async throws -> Bool {
        try await !db.query("UPDATE jobs SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4 RETURNING id",
                            [.text(JobState.running.rawValue), .int(Self.now), SQLValue(id), .text(from.rawValue)]).isEmpty
    }

    public func applications() async throws -> [ApplicationRecord] {
        try await db.query("SELECT * FROM applications ORDER BY id").map(ApplicationRecord.init(row:))
    }
}
