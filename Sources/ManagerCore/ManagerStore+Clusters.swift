import DragonflyCommon
import Foundation
import SQLStore

/// What REST create and update requests may set on a scheduler cluster; absent fields are
/// left as they are (create needs `name`).
public struct SchedulerClusterInput: Codable, Sendable {
    public init() {}
    public var name: String?
    public var bio: String?
    public var config: JSONValue?
    public var client_config: JSONValue?
    public var scopes: ClusterScopes?
    public var is_default: Bool?
}

public struct SeedPeerClusterInput: Codable, Sendable {
    public init() {}
    public var name: String?
    public var bio: String?
    public var config: JSONValue?
    public var scheduler_cluster_id: UInt64?
}

extension ManagerStore {
    public func schedulerClusters(page: Int, perPage: Int, name: String? = nil) async throws -> ([SchedulerCluster], Int) {
        let (rows, total) = try await self.page("scheduler_clusters", where: name.map { [("name", .text($0))] } ?? [],
                                                page: page, perPage: perPage)
        return (rows.map(SchedulerCluster.init(row:)), total)
    }

    public func schedulerCluster(_ id: UInt64) async throws -> SchedulerCluster {
        SchedulerCluster(row: try await row("scheduler_clusters", id: id, what: "scheduler cluster"))
    }

    public func allSchedulerClusters() async throws -> [SchedulerCluster] {
        try await db.query("SELECT * FROM scheduler_clusters ORDER BY id").map(SchedulerCluster.init(row:))
    }

    public func createSchedulerCluster(_ input: SchedulerClusterInput) async throws -> SchedulerCluster {
        guard let name = input.name, !name.isEmpty else { throw ManagerError(.invalid, "name is required") }
        try Self.validate(input.scopes)
        return SchedulerCluster(row: try await insert("scheduler_clusters", [
            ("name", .text(name)), ("bio", .text(input.bio ?? "")),
            ("config", .text((input.config ?? .emptyObject).text)),
            ("client_config", .text((input.client_config ?? .emptyObject).text)),
            ("scopes", .text(Self.json(input.scopes ?? ClusterScopes()))), ("is_default", SQLValue(input.is_default ?? false)),
        ], what: "scheduler cluster"))
    }

    public func updateSchedulerCluster(_ id: UInt64, _ input: SchedulerClusterInput) async throws -> SchedulerCluster {
        try Self.validate(input.scopes)
        var values: [(String, SQLValue)] = []
        if let v = input.name {
            guard !v.isEmpty else { throw ManagerError(.invalid, "name must not be empty") }
            values.append(("name", .text(v)))
        }
        if let v = input.bio { values.append(("bio", .text(v))) }
        if let v = input.config { values.append(("config", .text(v.text))) }
        if let v = input.client_config { values.append(("client_config", .text(v.text))) }
        if let v = input.scopes { values.append(("scopes", .text(Self.json(v)))) }
        if let v = input.is_default { values.append(("is_default", SQLValue(v))) }
        return SchedulerCluster(row: try await update("scheduler_clusters", id: id, values, what: "scheduler cluster"))
    }

    public func deleteSchedulerCluster(_ id: UInt64) async throws {
        try await delete("scheduler_clusters", id: id, what: "scheduler cluster")
    }

    public func seedPeerClusters(page: Int, perPage: Int, name: String? = nil) async throws -> ([SeedPeerCluster], Int) {
        let (rows, total) = try await self.page("seed_peer_clusters", where: name.map { [("name", .text($0))] } ?? [],
                                                page: page, perPage: perPage)
        return (rows.map(SeedPeerCluster.init(row:)), total)
    }

    public func seedPeerCluster(_ id: UInt64) async throws -> SeedPeerCluster {
        SeedPeerCluster(row: try await row("seed_peer_clusters", id: id, what: "seed peer cluster"))
    }

    public func createSeedPeerCluster(_ input: SeedPeerClusterInput) async throws -> SeedPeerCluster {
        guard let name = input.name, !name.isEmpty else { throw ManagerError(.invalid, "name is required") }
        return SeedPeerCluster(row: try await insert("seed_peer_clusters", [
            ("name", .text(name)), ("bio", .text(input.bio ?? "")), ("config", .text((input.config ?? .emptyObject).text)),
            ("scheduler_cluster_id", input.scheduler_cluster_id.map { SQLValue($0) } ?? .null),
        ], what: "seed peer cluster"))
    }

    public func updateSeedPeerCluster(_ id: UInt64, _ input: SeedPeerClusterInput) async throws -> SeedPeerCluster {
        var values: [(String, SQLValue)] = []
        if let v = input.name {
            guard !v.isEmpty else { throw ManagerError(.invalid, "name must not be empty") }
            values.append(("name", .text(v)))
        }
        if let v = input.bio { values.append(("bio", .text(v))) }
        if let v = input.config { values.append(("config", .text(v.text))) }
        if let v = input.scheduler_cluster_id { values.append(("scheduler_cluster_id", SQLValue(v))) }
        return SeedPeerCluster(row: try await update("seed_peer_clusters", id: id, values, what: "seed peer cluster"))
    }

    public func deleteSeedPeerCluster(_ id: UInt64) async throws {
        try await delete("seed_peer_clusters", id: id, what: "seed peer cluster")
    }

    static func json<T: Encodable>(_ value: T) -> String {
        (try? JSONCoding.encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// CIDRs must parse and hostname patterns must compile, or the searcher would skip them silently.
    static func validate(_ scopes: ClusterScopes?) throws {
        for cidr in scopes?.cidrs ?? [] where CIDR(cidr) == nil {
            throw ManagerError(.invalid, "scopes.cidrs: \(cidr) is not a CIDR like 10.0.0.0/8")
        }
        for pattern in scopes?.hostnames ?? [] where !PatternRegex.isValid(pattern) {
            throw ManagerError(.invalid, "scopes.hostnames: \(pattern) is not a regular expression")
        }
    }
}
