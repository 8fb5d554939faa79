import Foundation
import SQLStore

extension SQLRow {
    /// A Unix-seconds column as a date.
    func date(_ name: String) -> Date { Date(timeIntervalSince1970: Double(int(name))) }
}

/// Where a scheduler cluster's peers are: what the searcher matches hosts against.
public struct ClusterScopes: Codable, Sendable, Equatable {
    public var idc: String?
    public var location: String?
    public var cidrs: [String]?
    public var hostnames: [String]?
    public init(idc: String? = nil, location: String? = nil, cidrs: [String]? = nil, hostnames: [String]? = nil) {
        self.idc = idc
        self.location = location
        self.cidrs = cidrs
        self.hostnames = hostnames
    }
}

public struct SchedulerCluster: Codable, Sendable {
    public var id: UInt64
    public var name: String
    public var bio: String
    public var config: JSONValue
    public var client_config: JSONValue
    public var scopes: ClusterScopes
    public var is_default: Bool
    public var created_at: Date
    public var updated_at: Date

    init(row: SQLRow) {
        id = row.uint("id")
        name = row.string("name")
        bio = row.string("bio")
        config = JSONValue(text: row.optionalString("config"))
        client_config = JSONValue(text: row.optionalString("client_config"))
        scopes = (try? JSONCoding.decoder.decode(ClusterScopes.self, from: Data(row.string("scopes").utf8))) ?? ClusterScopes()
        is_default = row.bool("is_default")
        created_at = row.date("created_at")
        updated_at = row.date("updated_at")
    }
}

public struct SchedulerRecord: Codable, Sendable {
    public var id: UInt64
    public var hostname: String
    public var idc: String?
    public var location: String?
    public var ip: String
    public var port: Int32
    public var state: String
    public var features: [String]
    public var scheduler_cluster_id: UInt64
    public var created_at: Date
    public var updated_at: Date

    init(row: SQLRow) {
        id = row.uint("id")
        hostname = row.string("hostname")
        idc = row.optionalString("idc")
        location = row.optionalString("location")
        ip = row.string("ip")
        port = Int32(truncatingIfNeeded: row.int("port"))
        state = row.string("state")
        features = JSONValue(text: row.optionalString("features")).arrayValue?.compactMap(\.stringValue) ?? []
        scheduler_cluster_id = row.uint("scheduler_cluster_id")
        created_at = row.date("created_at")
        updated_at = row.date("updated_at")
    }
}

public struct SeedPeerCluster: Codable, Sendable {
    public var id: UInt64
    public var name: String
    public var bio: String
    public var config: JSONValue
    public var scheduler_cluster_id: UInt64?
    public var created_at: Date
    public var updated_at: Date

    init(row: SQLRow) {
        id = row.uint("id")
        name = row.string("name")
        bio = row.string("bio")
        config = JSONValue(text: row.optionalString("config"))
        scheduler_cluster_id = row["scheduler_cluster_id"].int.map { UInt64(bitPattern: $0) }
        created_at = row.date("created_at")
        updated_at = row.date("updated_at")
    }
}

public struct SeedPeerRecord: Codable, Sendable {
    public var id: UInt64
    public var hostname: String
    public var type: String
    public var idc: String?
    public var location: String?
    public var ip: String
    public var port: Int32
    public var download_port: Int32
    public var state: String
    public var seed_peer_cluster_id: UInt64
    public var created_at: Date
    public var updated_at: Date

    init(row: SQLRow) {
        id = row.uint("id")
        hostname = row.string("hostname")
        type = row.string("type")
        idc = row.optionalString("idc")
        location = row.optionalString("location")
        ip = row.string("ip")
        port = Int32(truncatingIfNeeded: row.int("port"))
        download_port = Int32(truncatingIfNeeded: row.int("download_port"))
        state = row.string("state")
        seed_peer_cluster_id = row.uint("seed_peer_cluster_id")
        created_at = row.date("created_at")
        updated_at = row.date("updated_at")
    }
}

public struct UserRecord: Codable, Sendable {
    public var id: UInt64
    public var name: String
    public var email: String
    public var role: String
    public var state: String
    public var created_at: Date

    init(row: SQLRow) {
        id = row.uint("id")
        name = row.string("name")
        email = row.string("email")
        role = row.string("role")
        state = row.string("state")
        created_at = row.date("created_at")
    }
}

public struct TokenRecord: Codable, Sendable {
    public var id: UInt64
    public var name: String
    public var bio: String
    public var scopes: [String]
    public var state: String
    public var expired_at: Date
    public var user_id: UInt64
    public var created_at: Date
    /// The secret itself: only in the answer to its creation, never stored.
    public var token: String?

    init(row: SQLRow) {
        id = row.uint("id")
        name = row.string("name")
        bio = row.string("bio")
        scopes = JSONValue(text: row.optionalString("scopes")).arrayValue?.compactMap(\.stringValue) ?? []
        state = row.string("state")
        expired_at = row.date("expired_at")
        user_id = row.uint("user_id")
        created_at = row.date("created_at")
    }
}

public struct JobRecord: Codable, Sendable {
    public var id: UInt64
    public var task_id: String
    public var bio: String
    public var type: String
    public var state: String
    public var args: JSONValue
    public var result: JSONValue
    public var user_id: UInt64?
    public var scheduler_cluster_ids: [UInt64]
    public var created_at: Date
    public var updated_at: Date

    init(row: SQLRow) {
        id = row.uint("id")
        task_id = row.string("task_id")
        bio = row.string("bio")
        type = row.string("type")
        state = row.string("state")
        args = JSONValue(text: row.optionalString("args"))
        result = JSONValue(text: row.optionalString("result"))
        user_id = row["user_id"].int.map { UInt64(bitPattern: $0) }
        scheduler_cluster_ids = JSONValue(text: row.optionalString("scheduler_cluster_ids")).arrayValue?
            .compactMap { $0.numberValue.map { UInt64($0) } } ?? []
        created_at = row.date("created_at")
        updated_at = row.date("updated_at")
    }
}

public struct ApplicationRecord: Codable, Sendable {
    public var id: UInt64
    public var name: String
    public var url: String
    public var bio: String
    public var priority: JSONValue

    init(row: SQLRow) {
        id = row.uint("id")
        name = row.string("name")
        url = row.string("url")
        bio = row.string("bio")
        priority = JSONValue(text: row.optionalString("priority"))
    }
}

/// A failure the REST and gRPC faces turn into their own status codes.
public struct ManagerError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case notFound, conflict, invalid, unauthorized, forbidden, tooManyRequests }
    public var kind: Kind
    public var message: String
    /// For `tooManyRequests`: when to come back.
    public var retryAfterSeconds: Int?
    public var description: String { message }
    public init(_ kind: Kind, _ message: String, retryAfterSeconds: Int? = nil) {
        self.kind = kind
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }
}
