import Foundation

/// The OpenAPI 3 description of the REST API, served at `/api/v1/openapi.json`. Built
/// from the same route table the tests walk, so a route cannot be added without it.
// The tables below are built once and never mutated, hence nonisolated(unsafe).
enum OpenAPIDocument {
    typealias Object = [String: Any]

    static let json: String = {
        let data = (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }()

    static func ref(_ name: String) -> Object { ["$ref": "#/components/schemas/\(name)"] }
    static func array(_ item: Object) -> Object { ["type": "array", "items": item] }
    nonisolated(unsafe) static let string: Object = ["type": "string"]
    nonisolated(unsafe) static let dateTime: Object = ["type": "string", "format": "date-time"]
    nonisolated(unsafe) static let boolean: Object = ["type": "boolean"]
    nonisolated(unsafe) static let id: Object = ["type": "integer", "format": "int64", "minimum": 1]
    nonisolated(unsafe) static let port: Object = ["type": "integer", "minimum": 1, "maximum": 65535]
    nonisolated(unsafe) static let anyObject: Object = ["type": "object", "additionalProperties": true]

    static func object(_ properties: Object, required: [String] = []) -> Object {
        var o: Object = ["type": "object", "properties": properties]
        if !required.isEmpty { o["required"] = required }
        return o
    }

    nonisolated(unsafe) static let schemas: Object = [
        "Error": object(["message": string], required: ["message"]),
        "Scopes": object(["idc": string, "location": string, "cidrs": array(string), "hostnames": array(string)]),
        "SchedulerCluster": object(["id": id, "name": string, "bio": string, "config": anyObject, "client_config": anyObject,
                                    "scopes": ref("Scopes"), "is_default": boolean, "created_at": dateTime, "updated_at": dateTime]),
        "SchedulerClusterInput": object(["name": ["type": "string", "minLength": 1], "bio": string, "config": anyObject,
                                         "client_config": anyObject, "scopes": ref("Scopes"), "is_default": boolean]),
        "SeedPeerCluster": object(["id": id, "name": string, "bio": string, "config": anyObject, "scheduler_cluster_id": id,
                                   "created_at": dateTime, "updated_at": dateTime]),
        "SeedPeerClusterInput": object(["name": ["type": "string", "minLength": 1], "bio": string, "config": anyObject,
                                        "scheduler_cluster_id": id]),
        "Scheduler": object(["id": id, "hostname": string, "idc": string, "location": string, "ip": string, "port": port,
                             "state": ["type": "string", "enum": ["active", "inactive"]], "features": array(string),
                             "scheduler_cluster_id": id, "created_at": dateTime, "updated_at": dateTime]),
        "SchedulerInput": object(["hostname": string, "idc": string, "location": string, "ip": string, "port": port,
                                  "features": array(string), "scheduler_cluster_id": id],
                                 required: ["hostname", "ip", "port", "scheduler_cluster_id"]),
        "SchedulerPatch": object(["idc": string, "location": string, "port": port, "features": array(string)]),
        "SeedPeerPatch": object(["type": string, "idc": string, "location": string, "port": port, "download_port": port]),
        "SeedPeer": object(["id": id, "hostname": string, "type": string, "idc": string, "location": string, "ip": string,
                            "port": port, "download_port": port, "state": ["type": "string", "enum": ["active", "inactive"]],
                            "seed_peer_cluster_id": id, "created_at": dateTime, "updated_at": dateTime]),
        "SeedPeerInput": object(["hostname": string, "type": string, "idc": string, "location": string, "ip": string,
                                 "port": port, "download_port": port, "seed_peer_cluster_id": id],
                                required: ["hostname", "ip", "port", "seed_peer_cluster_id"]),
        "User": object(["id": id, "name": string, "email": string, "role": ["type": "string", "enum": ["root", "guest"]],
                        "state": string, "created_at": dateTime]),
        "SignIn": object(["name": string, "password": string], required: ["name", "password"]),
        "SignUp": object(["name": ["type": "string", "minLength": 1, "maxLength": 64],
                          "password": ["type": "string", "minLength": 8, "maxLength": 1024],
                          "email": ["type": "string", "maxLength": 254]], required: ["name", "password"]),
        "SignInAnswer": object(["code": ["type": "integer"], "token": string, "expire": dateTime]),
        "Token": object(["id": id, "name": string, "bio": string, "scopes": array(["type": "string", "enum": ["job", "cluster", "preheat"]]),
                         "state": string, "expired_at": dateTime, "user_id": id, "created_at": dateTime,
                         "token": ["type": "string", "description": "the secret; only in the answer to POST"]]),
        "TokenInput": object(["name": string, "bio": string, "scopes": array(["type": "string", "enum": ["job", "cluster", "preheat"]]),
                              "expired_at": dateTime, "user_id": id], required: ["name", "scopes", "expired_at"]),
        "Job": object(["id": id, "task_id": string, "bio": string, "type": string, "state": string, "args": anyObject,
                       "result": anyObject, "user_id": id, "scheduler_cluster_ids": array(id), "created_at": dateTime,
                       "updated_at": dateTime]),
        "JobInput": object(["type": ["type": "string", "enum": ["preheat", "sync_peers", "get_task", "delete_task"]], "bio": string,
                            "args": anyObject, "scheduler_cluster_ids": array(id)], required: ["type"]),
        "PreheatInput": object(["type": ["type": "string", "enum": ["image", "file"]], "url": string, "urls": array(string),
                                "scope": string, "headers": ["type": "object", "additionalProperties": string]], required: ["url"]),
        "Preheat": object(["id": string, "status": string, "created_at": dateTime, "job": ref("Job")]),
        "Host": object(["id": string, "hostname": string, "ip": string, "port": port, "download_port": port,
                        "type": ["type": "string", "enum": ["normal", "super", "strong", "weak"]], "os": string, "platform": string,
                        "idc": string, "location": string, "disk_used_percent": ["type": "number"], "version": string,
                        "scheduler": string]),
        "PeerProgress": object(["id": string, "host_id": string, "hostname": string, "ip": string, "state": string,
                                "finished_pieces": ["type": "integer"], "back_to_source": boolean, "updated_at": dateTime]),
        "ClusterTask": object(["id": string, "url": string, "state": string, "content_length": ["type": "integer"],
                               "piece_count": ["type": "integer"], "peers": array(ref("PeerProgress")), "created_at": dateTime,
                               "updated_at": dateTime, "scheduler": string]),
        "PersistentCacheReplica": object(["peer_id": string, "host_id": string, "hostname": string, "ip": string,
                                          "persistent": ["type": "boolean"], "state": string, "updated_at": dateTime]),
        "PersistentCacheTask": object(["id": string, "state": string, "content_length": ["type": "integer"],
                                       "piece_length": ["type": "integer"], "piece_count": ["type": "integer"],
                                       "persistent_replica_count": ["type": "integer"],
                                       "current_persistent_replica_count": ["type": "integer"], "ttl_seconds": ["type": "integer"],
                                       "tag": string, "application": string, "replicas": array(ref("PersistentCacheReplica")),
                                       "created_at": dateTime, "updated_at": dateTime, "scheduler": string]),
    ]

    static func response(_ description: String, _ schema: Object?) -> Object {
        guard let schema else { return ["description": description] }
        return ["description": description, "content": ["application/json": ["schema": schema]]]
    }

    nonisolated(unsafe) static let errors: Object = [
        "400": response("invalid request", ref("Error")), "401": response("not signed in", ref("Error")),
        "403": response("not allowed", ref("Error")), "404": response("not found", ref("Error")),
        "409": response("conflict", ref("Error")),
    ]

    static func operation(_ summary: String, ok: String, _ schema: Object?, body: String? = nil, secured: Bool = true,
                          paged: Bool = false, idParam: Bool = false) -> Object {
        var responses = errors
        responses[ok] = response(summary, schema)
        var op: Object = ["summary": summary, "responses": responses]
        var params: [Object] = []
        if idParam { params.append(["name": "id", "in": "path", "required": true, "schema": id]) }
        if paged {
            params.append(["name": "page", "in": "query", "schema": ["type": "integer", "minimum": 1, "maximum": 1_000_000]])
            params.append(["name": "per_page", "in": "query", "schema": ["type": "integer", "minimum": 1, "maximum": 1000]])
        }
        if !params.isEmpty { op["parameters"] = params }
        if let body { op["requestBody"] = ["required": true, "content": ["application/json": ["schema": ref(body)]]] }
        op["security"] = secured ? [["bearerAuth": [String]()]] : [[String: [String]]]()
        return op
    }

    /// `resource` CRUD: list and create on the collection, get/patch/delete on items.
    static func crud(_ path: String, _ item: String, input: String, patch: String) -> Object {
        var itemOps: Object = [
            "get": operation("get \(item)", ok: "200", ref(item), idParam: true),
            "delete": operation("delete \(item)", ok: "204", nil, idParam: true),
        ]
        itemOps["patch"] = operation("update \(item)", ok: "200", ref(item), body: patch, idParam: true)
        return [
            path: ["get": operation("list \(item)s", ok: "200", array(ref(item)), paged: true),
                   "post": operation("create \(item)", ok: "201", ref(item), body: input)],
            "\(path)/{id}": itemOps,
        ]
    }

    static var paths: Object {
        var p: Object = [:]
        p.merge(crud("/api/v1/scheduler-clusters", "SchedulerCluster", input: "SchedulerClusterInput", patch: "SchedulerClusterInput")) { a, _ in a }
        p.merge(crud("/api/v1/seed-peer-clusters", "SeedPeerCluster", input: "SeedPeerClusterInput", patch: "SeedPeerClusterInput")) { a, _ in a }
        p.merge(crud("/api/v1/schedulers", "Scheduler", input: "SchedulerInput", patch: "SchedulerPatch")) { a, _ in a }
        p.merge(crud("/api/v1/seed-peers", "SeedPeer", input: "SeedPeerInput", patch: "SeedPeerPatch")) { a, _ in a }
        p["/api/v1/users/signin"] = ["post": operation("sign in", ok: "200", ref("SignInAnswer"), body: "SignIn", secured: false)]
        p["/api/v1/users/signup"] = ["post": operation("sign up as a guest", ok: "201", ref("User"), body: "SignUp", secured: false)]
        p["/api/v1/users/signout"] = ["post": operation("sign out: revokes the session token and clears its cookie", ok: "204", nil, secured: false)]
        p["/api/v1/users/me"] = ["get": operation("the signed-in user", ok: "200", ref("User"))]
        p["/api/v1/scheduler-clusters/{id}/hosts"] = [
            "get": operation("hosts the cluster's active schedulers know", ok: "200", array(ref("Host")), idParam: true),
        ]
        var tasks = operation("tasks of the cluster's active schedulers, with each peer's progress", ok: "200",
                              array(ref("ClusterTask")), idParam: true)
        tasks["parameters"] = (tasks["parameters"] as? [Object] ?? []) +
            [["name": "limit", "in": "query", "schema": ["type": "integer", "minimum": 1, "maximum": 1000]]]
        p["/api/v1/scheduler-clusters/{id}/tasks"] = ["get": tasks]
        p["/api/v1/scheduler-clusters/{id}/persistent-cache-tasks"] = [
            "get": operation("persistent cache tasks the cluster's active schedulers keep, with every copy", ok: "200",
                             array(ref("PersistentCacheTask")), idParam: true),
        ]
        p["/api/v1/users"] = ["get": operation("list users", ok: "200", array(ref("User")), paged: true)]
        p["/api/v1/users/{id}"] = ["get": operation("get a user", ok: "200", ref("User"), idParam: true)]
        p["/api/v1/personal-access-tokens"] = [
            "get": operation("list tokens", ok: "200", array(ref("Token")), paged: true),
            "post": operation("create a token", ok: "201", ref("Token"), body: "TokenInput"),
        ]
        p["/api/v1/personal-access-tokens/{id}"] = [
            "get": operation("get a token", ok: "200", ref("Token"), idParam: true),
            "delete": operation("delete a token", ok: "204", nil, idParam: true),
        ]
        for prefix in ["/api/v1/jobs", "/oapi/v1/jobs"] {
            p[prefix] = ["get": operation("list jobs", ok: "200", array(ref("Job")), paged: true),
                         "post": operation("create a job", ok: "201", ref("Job"), body: "JobInput")]
            p["\(prefix)/{id}"] = ["get": operation("get a job", ok: "200", ref("Job"), idParam: true)]
        }
        p["/api/v1/preheat"] = ["post": operation("preheat (alias of a preheat job)", ok: "201", ref("Preheat"), body: "PreheatInput")]
        p["/api/v1/preheat/{id}"] = ["get": operation("preheat state", ok: "200", ref("Preheat"), idParam: true)]
        p["/healthy"] = ["get": ["summary": "liveness", "security": [[String: [String]]](), "responses": ["200": ["description": "OK"]]]]
        return p
    }

    static var document: Object {
        [
            "openapi": "3.0.3",
            "info": ["title": "Dragonfly manager (Swift)", "version": "1.0.0",
                     "description": "Clusters, schedulers, seed peers, users, personal access tokens and jobs."],
            "paths": paths,
            "components": ["schemas": schemas,
                           "securitySchemes": ["bearerAuth": ["type": "http", "scheme": "bearer"]]],
        ]
    }
}
