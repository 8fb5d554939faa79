import CSQLite
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An SQLite file: the manager's zero-setup store. WAL mode, foreign keys on, and a busy
/// timeout so a second process reading the same file waits instead of failing.
public final class SQLiteDatabase: SQLDatabase {
    public let dialect = SQLDialect.sqlite
    private let connection: BlockingConnection<SQLiteHandle>
    private let statements: SerializedStatements

    public init(path: String) throws {
        Self.restrictPermissions(path)
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &db, flags, nil) == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw SQLError(message: "cannot open SQLite database \(path): \(message)", sql: "")
        }
        sqlite3_busy_timeout(db, 5000)
        let handle = SQLiteHandle(db)
        for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON", "PRAGMA synchronous=NORMAL"] {
            _ = try handle.run(pragma, [])
        }
        let connection = BlockingConnection(handle)
        self.connection = connection
        statements = SerializedStatements(dialect: .sqlite) { sql, parameters in
            try await connection.run { try $0.run(sql, parameters) }
        }
    }

    /// The store holds password hashes and tokens: only its owner may read it. SQLite makes
    /// the -wal and -shm files with the mode of the database file, so creating that one
    /// 0600 (whatever the umask) covers all three; files left by an older version are
    /// tightened too.
    static func restrictPermissions(_ path: String) {
        guard !path.isEmpty, path != ":memory:", !path.hasPrefix("file:") else { return }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 { _ = Glibc.close(fd) }
        for file in [path, path + "-wal", path + "-shm", path + "-journal"] {
            _ = chmod(file, 0o600)
        }
    }

    @discardableResult
    public func query(_ sql: String, _ parameters: [SQLValue]) async throws -> [SQLRow] {
        try await statements.query(sql, parameters)
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await statements.transaction(body)
    }

    public func close() async {
        await connection.shutdown()
    }
}

/// The open `sqlite3*`; used only on the connection's thread.
final class SQLiteHandle {
    private let db: OpaquePointer

    init(_ db: OpaquePointer) { self.db = db }
    deinit { sqlite3_close_v2(db) }

    func run(_ sql: String, _ parameters: [SQLValue]) throws -> [SQLRow] {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw error(sql)
        }
        defer { sqlite3_finalize(statement) }
        for (i, value) in parameters.enumerated() {
            // `$n` is a named parameter to SQLite: bind by its name, whatever its position.
            let index = sqlite3_bind_parameter_index(statement, "$\(i + 1)")
            guard index > 0 else { continue }
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(statement, index)
            case .int(let v): rc = sqlite3_bind_int64(statement, index, v)
            case .double(let v): rc = sqlite3_bind_double(statement, index, v)
            case .text(let t): rc = sqlite3_bind_text(statement, index, t, -1, sqlite_transient_shim())
            }
            guard rc == SQLITE_OK else { throw error(sql) }
        }
        let count = Int(sqlite3_column_count(statement))
        let columns = (0..<count).map { String(cString: sqlite3_column_name(statement, Int32($0))) }
        var rows: [SQLRow] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(sql) }
            var values: [SQLValue] = []
            values.reserveCapacity(count)
            for c in 0..<Int32(count) {
                switch sqlite3_column_type(statement, c) {
                case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(statement, c)))
                case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(statement, c)))
                case SQLITE_NULL: values.append(.null)
                default: values.append(sqlite3_column_text(statement, c).map { .text(String(cString: $0)) } ?? .null)
                }
            }
            rows.append(SQLRow(columns: columns, values: values))
        }
        return rows
    }

    private func error(_ sql: String) -> SQLError {
        let code = sqlite3_errcode(db) & 0xFF
        return SQLError(kind: code == SQLITE_CONSTRAINT ? .constraint : .other,
                        message: String(cString: sqlite3_errmsg(db)), sql: sql)
    }
}
