/// A lock held across suspension points: one holder at a time, the rest wait in order.
actor AsyncLock {
    private var held = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !held {
            held = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            held = false
        } else {
            waiters.removeFirst().resume()
        }
    }

    nonisolated func withLock<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await acquire()
        do {
            let value = try await body()
            await release()
            return value
        } catch {
            await release()
            throw error
        }
    }
}

/// Statements inside a transaction: the connection is already held, so they run directly.
struct TransactionScope: SQLDatabase {
    let dialect: SQLDialect
    let run: @Sendable (String, [SQLValue]) async throws -> [SQLRow]

    func query(_ sql: String, _ parameters: [SQLValue]) async throws -> [SQLRow] { try await run(sql, parameters) }

    func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await body(self)  // already inside one
    }

    func close() async {}
}

/// Shared by both backends: statements are serialized through one lock, and a transaction
/// keeps it from BEGIN to COMMIT so nothing else runs inside it.
struct SerializedStatements: Sendable {
    let dialect: SQLDialect
    let lock = AsyncLock()
    let run: @Sendable (String, [SQLValue]) async throws -> [SQLRow]

    func query(_ sql: String, _ parameters: [SQLValue]) async throws -> [SQLRow] {
        try await lock.withLock { try await run(sql, parameters) }
    }

    func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let run = self.run
        return try await lock.withLock {
            _ = try await run("BEGIN", [])
            let scope = TransactionScope(dialect: dialect, run: run)
            do {
                let value = try await body(scope)
                _ = try await run("COMMIT", [])
                return value
            } catch {
                _ = try? await run("ROLLBACK", [])
                throw error
            }
        }
    }
}
