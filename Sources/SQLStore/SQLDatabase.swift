/// A value bound to or read from SQL. Both backends store only these: 64-bit integers,
/// doubles, text and NULL (timestamps are Unix seconds, documents are JSON text), so one
/// schema and one set of queries serve SQLite and PostgreSQL.
public enum SQLValue: Sendable, Equatable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)

    public var int: Int64? {
        switch self {
        case .int(let v): return v
        case .double(let v): return Int64(exactly: v)
        case .text(let t): return Int64(t)
        case .null: return nil
        }
    }

    public var string: String? {
        switch self {
        case .text(let t): return t
        case .int(let v): return String(v)
        case .double(let v): return String(v)
        case .null: return nil
        }
    }

    public var double: Double? {
        switch self {
        case .double(let v): return v
        case .int(let v): return Double(v)
        case .text(let t): return Double(t)
        case .null: return nil
        }
    }
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    public init(_ value: Int64?) { self = value.map { .int($0) } ?? .null }
    public init(_ value: UInt64) { self = .int(Int64(bitPattern: value)) }
    public init(_ value: Int) { self = .int(Int64(value)) }
    public init(_ value: Bool) { self = .int(value ? 1 : 0) }
}

/// One result row, read by column name.
public struct SQLRow: Sendable {
    public let columns: [String]
    public let values: [SQLValue]

    public init(columns: [String], values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    public subscript(_ name: String) -> SQLValue {
        guard let i = columns.firstIndex(of: name) else { return .null }
        return values[i]
    }

    public func int(_ name: String) -> Int64 { self[name].int ?? 0 }
    public func uint(_ name: String) -> UInt64 { UInt64(bitPattern: self[name].int ?? 0) }
    public func string(_ name: String) -> String { self[name].string ?? "" }
    public func optionalString(_ name: String) -> String? { self[name].string }
    public func bool(_ name: String) -> Bool { (self[name].int ?? 0) != 0 }
}

public enum SQLDialect: Sendable {
    case sqlite, postgres

    /// The column type of an auto-numbered primary key.
    public var autoID: String {
        switch self {
        case .sqlite: return "INTEGER PRIMARY KEY AUTOINCREMENT"
        case .postgres: return "BIGSERIAL PRIMARY KEY"
        }
    }
}

/// A failed statement, with the database's own message and the SQL that caused it.
public struct SQLError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case constraint, other }
    public var kind: Kind
    public var message: String
    public var sql: String
    public var description: String { "\(message) (in: \(sql.prefix(120)))" }
    public init(kind: Kind = .other, message: String, sql: String) {
        self.kind = kind
        self.message = message
        self.sql = sql
    }
}

/// A SQL database. Placeholders are written `$1`, `$2`, … for both backends.
public protocol SQLDatabase: Sendable {
    var dialect: SQLDialect { get }
    /// Runs a statement and returns its rows (use `RETURNING` to read back inserts).
    @discardableResult
    func query(_ sql: String, _ parameters: [SQLValue]) async throws -> [SQLRow]
    /// Runs `body` in one transaction: committed if it returns, rolled back if it throws.
    func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    func close() async
}

extension SQLDatabase {
    @discardableResult
    public func query(_ sql: String) async throws -> [SQLRow] { try await query(sql, []) }
}
