import Foundation
import Logging
import NIOCore
import PostgresNIO
import Locking

/// A PostgreSQL database reached by URL (`postgres://user:pass@host:5432/db?sslmode=disable`),
/// for several managers sharing one store. One connection, statements one at a time; a
/// connection that dropped is opened again on the next statement.
public final class PostgresDatabase: SQLDatabase {
    public let dialect = SQLDialect.postgres
    private let session: PostgresSession
    private let statements: SerializedStatements

    public init(url: String, logger: Logger = Logger(label: "sqlstore.postgres")) async throws {
        let session = PostgresSession(configuration: try PostgresSession.configuration(url), logger: logger)
        self.session = session
        statements = SerializedStatements(dialect: .postgres) { sql, parameters in
            try await session.run(sql, parameters)
        }
        _ = try await session.connection()
    }

    @discardableResult
    public func query(_ sql: String, _ parameters: [SQLValue]) async throws -> [SQLRow] {
        try await statements.query(sql, parameters)
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await statements.transaction(body)
    }

    public func close() async {
        await session.close()
    }
}

/// The connection and how to open it again.
final class PostgresSession: Sendable {
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private let current = Locked<PostgresConnection?>(nil)

    init(configuration: PostgresConnection.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    func close() async {
        let c = current.withLock { c in defer { c = nil }; return c }
        try? await c?.close()
    }

    /// `postgres://` or `postgresql://` URLs; `sslmode=require` turns TLS on.
    static func configuration(_ url: String) throws -> PostgresConnection.Configuration {
        guard let c = URLComponents(string: url), ["postgres", "postgresql"].contains(c.scheme ?? ""), let host = c.host,
              let user = c.user else {
            throw SQLError(message: "database URL must look like postgres://user:password@host:5432/dbname", sql: "")
        }
        let database = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        let sslmode = c.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
        let tls: PostgresConnection.Configuration.TLS
        switch sslmode {
        case "disable": tls = .disable
        case "require", "verify-full", "verify-ca": tls = .require(try .init(configuration: .makeClientConfiguration()))
        default: tls = .prefer(try .init(configuration: .makeClientConfiguration()))
        }
        return PostgresConnection.Configuration(host: host, port: c.port ?? 5432, username: user.removingPercentEncoding ?? user,
                                                password: c.password?.removingPercentEncoding, database: database.isEmpty ? nil : database,
                                                tls: tls)
    }

    func connection() async throws -> PostgresConnection {
        if let c = current.withLock({ $0 }), !c.isClosed { return c }
        do {
            let c = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
            current.withLock { $0 = c }
            return c
        } catch {
            throw SQLError(message: "cannot connect to PostgreSQL: \(String(reflecting: error))", sql: "")
        }
    }

    func run(_ sql: String, _ parameters: [SQLValue]) async throws -> [SQLRow] {
        let connection = try await connection()
        var binds = PostgresBindings()
        for p in parameters {
            switch p {
            case .null: binds.appendNull()
            case .int(let v): binds.append(v)
            case .double(let v): binds.append(v)
            case .text(let t): binds.append(t)
            }
        }
        do {
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            var result: [SQLRow] = []
            for try await row in rows {
                var columns: [String] = []
                var values: [SQLValue] = []
                for cell in row {
                    columns.append(cell.columnName)
                    values.append(Self.value(of: cell))
                }
                result.append(SQLRow(columns: columns, values: values))
            }
            return result
        } catch let error as PSQLError {
            // Class 23: integrity constraint violation (unique, foreign key, not null).
            let state = error.serverInfo?[.sqlState] ?? ""
            let message = error.serverInfo?[.message] ?? String(reflecting: error)
            throw SQLError(kind: state.hasPrefix("23") ? .constraint : .other, message: message, sql: sql)
        }
    }

    private static func value(of cell: PostgresCell) -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int8, .int4, .int2: return (try? cell.decode(Int64.self)).map { .int($0) } ?? .null
        case .float8, .float4: return (try? cell.decode(Double.self)).map { .double($0) } ?? .null
        case .bool: return (try? cell.decode(Bool.self)).map { .int($0 ? 1 : 0) } ?? .null
        default: return (try? cell.decode(String.self)).map { .text($0) } ?? .null
        }
    }
}
