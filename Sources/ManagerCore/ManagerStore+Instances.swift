import Foundation
import SQLStore

/// A scheduler or seed peer as it reports itself (gRPC Update*) or as REST creates it.
public struct SchedulerInput: Codable, Sendable {
    public var hostname: String?
    public var idc: String?
    public var location: String?
    public var ip: String?
    public var port: Int32?
    public var features: [String]?
    public var scheduler_cluster_id: UInt64?
    public init() {}
}

public struct SeedPeerInput: Codable, Sendable {
    public var hostname: String?
    public var type: String?
    public var idc: String?
    public var location: String?
    public var ip: String?
    public var port: Int32?
    public var download_port: Int32?
    public var seed_peer_cluster_id: UInt64?
    public init() {}
}

/// Which kind of instance a keep-alive is for.
public enum InstanceKind: Sendable {
    case scheduler, seedPeer

    var table: String { self == .scheduler ? "schedulers" : "seed_peers" }
    var clusterColumn: String { self == .scheduler ? "scheduler_cluster_id" : "seed_peer_cluster_id" }
}

extension ManagerStore {
    public func schedulers(page: Int, perPage: Int, clusterID: UInt64? = nil, state: String? = nil) async throws -> ([SchedulerRecord], Int) {
        var conditions: [(String, SQLValue)] = []
        if let clusterID { conditions.append(("scheduler_cluster_id", SQLValue(clusterID))) }
        if let state { conditions.append(("state", .text(state))) }
        let (rows, total) = try await self.page("schedulers", where: conditions, page: page, perPage: perPage)
        return (rows.map(SchedulerRecord.init(row:)), total)
    }

    public func scheduler(_ id: UInt64) async throws -> SchedulerRecord {
        SchedulerRecord(row: try await row("schedulers", id: id, what: "scheduler"))
    }

    public func scheduler(hostname: String, ip: String, clusterID: UInt64) async throws -> SchedulerRecord? {
        try await db.query("SELECT * FROM schedulers WHERE hostname = $1 AND ip = $2 AND scheduler_cluster_id = $3",
                           [.text(hostname), .text(ip), SQLValue(clusterID)]).first.map(SchedulerRecord.init(row:))
    }

    public func activeSchedulers(clusterID: UInt64) async throws -> [SchedulerRecord] {
        try await db.query("SELECT * FROM schedulers WHERE scheduler_cluster_id = $1 AND state = 'active' ORDER BY id",
                           [SQLValue(clusterID)]).map(SchedulerRecord.init(row:))
    }

    /// Creates the scheduler, or updates the one with the same hostname, IP and cluster
    /// (what `UpdateScheduler` does each time a scheduler starts).
    public func upsertScheduler(_ input: SchedulerInput) async throws -> SchedulerRecord {
        guard let hostname = input.hostname, !hostname.isEmpty, let ip = input.ip, !ip.isEmpty,
              let clusterID = input.scheduler_cluster_id, clusterID > 0 else {
            throw ManagerError(.invalid, "hostname, ip and scheduler_cluster_id are required")
        }
        guard let port = input.port, (1...65535).contains(port) else { throw ManagerError(.invalid, "port must be 1-65535") }
        _ = try await schedulerCluster(clusterID)
        let values: [(String, SQLValue)] = [
            ("idc", SQLValue(input.idc)), ("location", SQLValue(input.location)), ("port", .int(Int64(port))),
            ("features", .text(Self.json(input.features ?? []))),
        ]
        if let existing = try await scheduler(hostname: hostname, ip: ip, clusterID: clusterID) {
            return SchedulerRecord(row: try await update("schedulers", id: existing.id, values, what: "scheduler"))
        }
        return SchedulerRecord(row: try await insert("schedulers", [
            ("hostname", .text(hostname)), ("ip", .text(ip)), ("scheduler_cluster_id", SQLValue(clusterID)),
        ] + values, what: "scheduler"))
    }

    /// Changes what an operator may change: location data, port, features.
    public func updateScheduler(_ id: UInt64, _ input: SchedulerInput) async throws -> SchedulerRecord {
        var values: [(String, SQLValue)] = []
        if let v = input.idc { values.append(("idc", .text(v))) }
        if let v = input.location { values.append(("location", .text(v))) }
        if let v = input.port {
            guard (1...65535).contains(v) else { throw ManagerError(.invalid, "port must be 1-65535") }
            values.append(("port", .int(Int64(v))))
        }
        if let v = input.features { values.append(("features", .text(Self.json(v)))) }
        return SchedulerRecord(row: try await update("schedulers", id: id, values, what: "scheduler"))
    }

    public func deleteScheduler(_ id: UInt64) async throws {
        try await delete("schedulers", id: id, what: "scheduler")
    }

    public func seedPeers(page: Int, perPage: Int, clusterID: UInt64? = nil, state: String? = nil) async throws -> ([SeedPeerRecord], Int) {
        var conditions: [(String, SQLValue)] = []
        if let clusterID { conditions.append(("seed_peer_cluster_id", SQLValue(clusterID))) }
        if let state { conditions.append(("state", .text(state))) }
        let (rows, total) = try await self.page("seed_peers", where: conditions, page: page, perPage: perPage)
        return (rows.map(SeedPeerRecord.init(row:)), total)
    }

    public func seedPeer(_ id: UInt64) async throws -> SeedPeerRecord {
        SeedPeerRecord(row: try await row("seed_peers", id: id, what: "seed peer"))
    }

    public func seedPeer(hostname: String, ip: String, clusterID: UInt64) async throws -> SeedPeerRecord? {
        try await db.query("SELECT * FROM seed_peers WHERE hostname = $1 AND ip = $2 AND seed_peer_cluster_id = $3",
                           [.text(hostname), .text(ip), SQLValue(clusterID)]).first.map(SeedPeerRecord.init(row:))
    }

    /// The active seed peers serving a scheduler cluster (through their seed peer cluster).
    public func activeSeedPeers(schedulerClusterID: UInt64) async throws -> [SeedPeerRecord] {
        try await db.query("""
            SELECT sp.* FROM seed_peers sp JOIN seed_peer_clusters spc ON sp.seed_peer_cluster_id = spc.id
            WHERE spc.scheduler_cluster_id = $1 AND sp.state = 'active' ORDER BY sp.id
            """, [SQLValue(schedulerClusterID)]).map(SeedPeerRecord.init(row:))
    }

    public func upsertSeedPeer(_ input: SeedPeerInput) async throws -> SeedPeerRecord {
        guard let hostname = input.hostname, !hostname.isEmpty, let ip = input.ip, !ip.isEmpty,
              let clusterID = input.seed_peer_cluster_id, clusterID > 0 else {
            throw ManagerError(.invalid, "hostname, ip and seed_peer_cluster_id are required")
        }
        guard let port = input.port, (1...65535).contains(port) else { throw ManagerError(.invalid, "port must be 1-65535") }
        let downloadPort = input.download_port ?? port
        guard (1...65535).contains(downloadPort) else { throw ManagerError(.invalid, "download_port must be 1-65535") }
        _ = try await seedPeerCluster(clusterID)
        let values: [(String, SQLValue)] = [
            ("type", .text(input.type ?? "super")), ("idc", SQLValue(input.idc)), ("location", SQLValue(input.location)),
            ("port", .int(Int64(port))), ("download_port", .int(Int64(downloadPort))),
        ]
        if let existing = try await seedPeer(hostname: hostname, ip: ip, clusterID: clusterID) {
            return SeedPeerRecord(row: try await update("seed_peers", id: existing.id, values, what: "seed peer"))
        }
        return SeedPeerRecord(row: try await insert("seed_peers", [
            ("hostname", .text(hostname)), ("ip", .text(ip)), ("seed_peer_cluster_id", SQLValue(clusterID)),
        ] + values, what: "seed peer"))
    }

    public func updateSeedPeer(_ id: UInt64, _ input: SeedPeerInput) async throws -> SeedPeerRecord {
        var values: [(String, SQLValue)] = []
        if let v = input.type { values.append(("type", .text(v))) }
        if let v = input.idc { values.append(("idc", .text(v))) }
        if let v = input.location { values.append(("location", .text(v))) }
        for (column, port) in [("port", input.port), ("download_port", input.download_port)] {
            guard let port else { continue }
            guard (1...65535).contains(port) else { throw ManagerError(.invalid, "\(column) must be 1-65535") }
            values.append((column, .int(Int64(port))))
        }
        return SeedPeerRecord(row: try await update("seed_peers", id: id, values, what: "seed peer"))
    }

    public func deleteSeedPeer(_ id: UInt64) async throws {
        try await delete("seed_peers", id: id, what: "seed peer")
    }

    /// Marks an instance active (a keep-alive arrived) or inactive (its stream ended).
    /// Returns false when no such instance is registered.
    @discardableResult
    public func setState(_ kind: InstanceKind, hostname: String, ip: String, clusterID: UInt64, active: Bool) async throws -> Bool {
        let now = Self.now
        let rows = try await db.query("""
            UPDATE \(kind.table) SET state = $1, updated_at = $2\(active ? ", last_keep_alive_at = $2" : "")
            WHERE hostname = $3 AND ip = $4 AND \(kind.clusterColumn) = $5 RETURNING id
            """, [.text(active ? "active" : "inactive"), .int(now), .text(hostname), .text(ip), SQLValue(clusterID)])
        return !rows.isEmpty
    }

    /// Instances whose last keep-alive is older than `timeout` become inactive (a manager
    /// that restarted, or a stream that vanished without closing). Returns how many.
    @discardableResult
    public func expireKeepAlives(olderThan timeout: TimeInterval) async throws -> Int {
        let cutoff = Self.now - Int64(timeout)
        var n = 0
        for kind in [InstanceKind.scheduler, .seedPeer] {
            n += try await db.query("""
                UPDATE \(kind.table) SET state = 'inactive' WHERE state = 'active' AND last_keep_alive_at < $1 RETURNING id
                """, [.int(cutoff)]).count
        }
        return n
    }
}
