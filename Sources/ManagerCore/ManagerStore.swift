import Foundation
import Logging
import SQLStore

/// The manager's records over SQLite or PostgreSQL. Every method is one statement or one
/// transaction, so several managers can share a PostgreSQL store.
public struct ManagerStore: Sendable {
    public let db: any SQLDatabase
    let logger: Logger

    public init(db: any SQLDatabase, logger: Logger = Logger(label: "manager.store")) {
        self.db = db
        self.logger = logger
    }

    /// Brings the schema up to date and makes what a fresh manager has: the default
    /// scheduler and seed peer clusters, and the root user. Returns the root password when
    /// it was generated here (to be shown once).
    public func prepare(rootPassword: String?) async throws -> String? {
        try await Migrator.migrate(db, Schema.migrations)
        // Made now, not on the first unknown name, which would then answer slower than the rest.
        _ = Self.decoyHash
        let now = Self.now
        if try await db.query("SELECT id FROM scheduler_clusters LIMIT 1").isEmpty {
            try await db.query("""
                INSERT INTO scheduler_clusters (name, bio, config, client_config, scopes, is_default, created_at, updated_at)
                VALUES ('cluster-1', 'default scheduler cluster', $1, $2, '{}', 1, $3, $3)
                """, [.text(#"{"candidate_parent_limit":4,"filter_parent_limit":15}"#), .text(#"{"load_limit":200}"#), .int(now)])
            try await db.query("""
                INSERT INTO seed_peer_clusters (name, bio, config, scheduler_cluster_id, created_at, updated_at)
                VALUES ('cluster-1', 'default seed peer cluster', $1, (SELECT MIN(id) FROM scheduler_clusters), $2, $2)
                """, [.text(#"{"load_limit":300}"#), .int(now)])
        }
        guard try await db.query("SELECT id FROM users WHERE name = 'root'").isEmpty else { return nil }
        let generated = rootPassword == nil ? Secrets.randomToken(bytes: 12) : nil
        do {
            _ = try await createUser(name: "root", password: rootPassword ?? generated ?? "", email: "", role: .root)
        } catch let error as ManagerError where error.kind == .conflict {
            return nil  // another manager sharing the store made it first
        }
        return generated
    }

    static var now: Int64 { Int64(Date().timeIntervalSince1970) }

    // MARK: - Generic row access

    /// One page of a table, newest first, with the total count for pagination headers.
    func page(_ table: String, where conditions: [(String, SQLValue)] = [], page: Int, perPage: Int) async throws -> ([SQLRow], Int) {
        var clauses: [String] = []
        var params: [SQLValue] = []
        for (column, value) in conditions {
            params.append(value)
            clauses.append("\(column) = $\(params.count)")
        }
        let filter = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        let total = try await db.query("SELECT COUNT(*) AS n FROM \(table)\(filter)", params).first?.int("n") ?? 0
        let limit = max(1, min(perPage, 1000))
        let offset = max(0, page - 1) * limit
        let rows = try await db.query("SELECT * FROM \(table)\(filter) ORDER BY id LIMIT \(limit) OFFSET \(offset)", params)
        return (rows, Int(total))
    }

    func row(_ table: String, id: UInt64, what: String) async throws -> SQLRow {
        guard let row = try await db.query("SELECT * FROM \(table) WHERE id = $1", [SQLValue(id)]).first else {
            throw ManagerError(.notFound, "\(what) \(id) not found")
        }
        return row
    }

    func insert(_ table: String, _ values: [(String, SQLValue)], what: String) async throws -> SQLRow {
        let now = SQLValue.int(Self.now)
        let all = values + [("created_at", now), ("updated_at", now)]
        let placeholders = (1...all.count).map { "$\($0)" }.joined(separator: ", ")
        let sql = "INSERT INTO \(table) (\(all.map(\.0).joined(separator: ", "))) VALUES (\(placeholders)) RETURNING *"
        do {
            guard let row = try await db.query(sql, all.map(\.1)).first else { throw ManagerError(.invalid, "\(what) not created") }
            return row
        } catch let error as SQLError where error.kind == .constraint {
            throw ManagerError(.conflict, "\(what) conflicts with an existing one or refers to a missing record: \(error.message)")
        }
    }

    func update(_ table: String, id: UInt64, _ values: [(String, SQLValue)], what: String) async throws -> SQLRow {
        guard !values.isEmpty else { return try await row(table, id: id, what: what) }
        let all = values + [("updated_at", .int(Self.now))]
        let sets = all.enumerated().map { "\($0.element.0) = $\($0.offset + 1)" }.joined(separator: ", ")
        do {
            guard let row = try await db.query("UPDATE \(table) SET \(sets) WHERE id = $\(all.count + 1) RETURNING *",
                                               all.map(\.1) + [SQLValue(id)]).first else {
                throw ManagerError(.notFound, "\(what) \(id) not found")
            }
            return row
        } catch let error as SQLError where error.kind == .constraint {
            throw ManagerError(.conflict, "\(what) conflicts with an existing one: \(error.message)")
        }
    }

    func delete(_ table: String, id: UInt64, what: String) async throws {
        guard try await !db.query("DELETE FROM \(table) WHERE id = $1 RETURNING id", [SQLValue(id)]).isEmpty else {
            throw ManagerError(.notFound, "\(what) \(id) not found")
        }
    }
}

extension Secrets {
    /// A random URL-safe string of `bytes` bytes of entropy.
    static func randomToken(bytes: Int) -> String {
        hex(randomBytes(bytes))
    }
}

import DragonflyCommon
