/// Applies schema changes in order, once each, recording them in `schema_migrations`.
/// Every migration runs in a transaction; on PostgreSQL an advisory lock keeps two
/// managers starting together from racing.
public struct Migration: Sendable {
    public let version: Int64
    /// Statements; `{ID}` stands for the dialect's auto-numbered primary key column type.
    public let statements: [String]

    public init(version: Int64, _ statements: [String]) {
        self.version = version
        self.statements = statements
    }
}

public enum Migrator {
    public static func migrate(_ db: any SQLDatabase, _ migrations: [Migration]) async throws {
        try await db.query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        for migration in migrations.sorted(by: { $0.version < $1.version }) {
            try await db.transaction { tx in
                if tx.dialect == .postgres { try await tx.query("SELECT pg_advisory_xact_lock(6500301)") }
                let done = try await tx.query("SELECT version FROM schema_migrations WHERE version = $1", [.int(migration.version)])
                guard done.isEmpty else { return }
                for statement in migration.statements {
                    try await tx.query(statement.replacingOccurrences(of: "{ID}", with: tx.dialect.autoID))
                }
                try await tx.query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                                   [.int(migration.version), .int(Int64(Date().timeIntervalSince1970))])
            }
        }
    }
}

import Foundation
