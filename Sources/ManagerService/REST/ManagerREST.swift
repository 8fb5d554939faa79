import DragonflyCommon
import Foundation
import HTTPServing
import Logging
import ManagerCore
import NIOHTTP1

/// The REST API on 8080 (`/api/v1`, `/oapi/v1`), with `/healthy` and `/metrics`.
public struct ManagerREST: Sendable {
    let store: ManagerStore
    let signer: JWTSigner
    let metrics: MetricsRegistry
    let inspector: ClusterInspector
    let signIns = SignInThrottle()

    public init(store: ManagerStore, signer: JWTSigner, metrics: MetricsRegistry, inspector: ClusterInspector) {
        self.store = store
        self.signer = signer
        self.metrics = metrics
        self.inspector = inspector
    }

    public func router(logger: Logger) -> RESTRouter {
        let routes = RouteTable()
        let metrics = self.metrics
        routes.get("/healthy") { _, _ in REST.text("OK", type: "text/plain; charset=utf-8") }
        routes.get("/metrics") { _, _ in
            RESTResponse(status: .ok, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"], body: metrics.render())
        }
        routes.get("/api/v1/openapi.json") { _, _ in REST.text(OpenAPIDocument.json, type: "application/json") }
        ConsoleRoutes.add(to: routes)
        let authenticator = Authenticator(store: store, signer: signer)
        let api = routes.group("api/v1", authenticator: authenticator)
        addUsers(api)
        addClusters(api)
        addInstances(api)
        addLiveState(api)
        addJobs(api, prefix: "jobs", open: false)
        addPreheatAliases(api)
        let oapi = routes.group("oapi/v1", authenticator: authenticator)
        addJobs(oapi, prefix: "jobs", open: true)
        return routes.router(metrics: metrics, logger: logger)
    }

    // MARK: - Users and tokens

    struct SignIn: Decodable { var name: String; var password: String }
    struct SignUp: Decodable { var name: String; var password: String; var email: String? }
    struct TokenInput: Decodable {
        var name: String
        var bio: String?
        var scopes: [String]
        var expired_at: Date
        var user_id: UInt64?
    }

    func addUsers(_ api: RouteGroup) {
        let store = self.store, signer = self.signer, signIns = self.signIns
        api.post("users/signin") { request, context in
            let body = try REST.body(SignIn.self, request)
            // Longer than any account can have: refused before it costs a hash.
            guard body.name.utf8.count <= UserLimits.maxNameBytes, body.password.utf8.count <= UserLimits.maxPasswordBytes else {
                throw ManagerError(.invalid, "name or password too long")
            }
            if let refusal = await signIns.refusal(name: body.name, client: context.clientIP) {
                let whose: String
                switch refusal {
                case .name: whose = "for \(body.name)"
                case .client: whose = "from \(context.clientIP)"
                }
                throw ManagerError(.tooManyRequests, "too many failed sign-ins \(whose); try again in \(refusal.seconds) s",
                                   retryAfterSeconds: refusal.seconds)
            }
            guard let user = try await store.authenticate(name: body.name, password: body.password) else {
                await signIns.failed(name: body.name, client: context.clientIP)
                throw ManagerError(.unauthorized, "wrong name or password")
            }
            await signIns.succeeded(name: body.name)
            let (token, expires) = signer.sign(user)
            let h: HTTPHeaders = ["Set-Cookie": "jwt=\(token); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(Int(signer.lifetime))"]
            return try REST.json(SignInAnswer(code: 200, token: token, expire: expires), headers: h)
        }
        // Revokes the session's token, not just the cookie: a copy of it (a script, a
        // proxy log) must stop working too.
        api.post("users/signout") { _, context in
            if let session = context.session { try await store.revokeSession(session) }
            return RESTResponse(status: .noContent, headers: ["Set-Cookie": "jwt=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"])
        }
        // Who the session belongs to: the console asks on load, as its cookie is HttpOnly.
        api.get("users/me") { _, context in
            try REST.json(try context.requireSession())
        }
        api.post("users/signup") { request, context in
            let body = try REST.body(SignUp.self, request)
            return try REST.json(try await store.createUser(name: body.name, password: body.password, email: body.email ?? "", role: .guest),
                                 status: .created)
        }
        api.get("users") { request, context in
            _ = try context.requireSessionRoot()
            let page = try Pagination(request)
            let (users, total) = try await store.users(page: page.page, perPage: page.perPage)
            return try REST.page(users, total: total, request: request, page: page)
        }
        api.get("users/:id") { _, context in
            let me = try context.requireSession()
            let id = try REST.id(context)
            guard me.id == id || me.role == UserRole.root.rawValue else { throw ManagerError(.forbidden, "you may only see yourself") }
            return try REST.json(try await store.user(id))
        }
        api.get("personal-access-tokens") { request, context in
            let me = try context.requireSession()
            let page = try Pagination(request)
            let (tokens, total) = try await store.tokens(page: page.page, perPage: page.perPage,
                                                         userID: me.role == UserRole.root.rawValue ? nil : me.id)
            return try REST.page(tokens, total: total, request: request, page: page)
        }
        api.post("personal-access-tokens") { request, context in
            let me = try context.requireSession()
            let body = try REST.body(TokenInput.self, request)
            let owner = body.user_id ?? me.id
            guard owner == me.id || me.role == UserRole.root.rawValue else { throw ManagerError(.forbidden, "tokens are made for yourself") }
            _ = try await store.user(owner)
            return try REST.json(try await store.createToken(userID: owner, name: body.name, bio: body.bio ?? "", scopes: body.scopes,
                                                             expiresAt: body.expired_at), status: .created)
        }
        api.get("personal-access-tokens/:id") { _, context in
            let me = try context.requireSession()
            let token = try await store.token(try REST.id(context))
            guard token.user_id == me.id || me.role == UserRole.root.rawValue else { throw ManagerError(.notFound, "personal access token not found") }
            return try REST.json(token)
        }
        api.delete("personal-access-tokens/:id") { _, context in
            let me = try context.requireSession()
            let token = try await store.token(try REST.id(context))
            guard token.user_id == me.id || me.role == UserRole.root.rawValue else { throw ManagerError(.notFound, "personal access token not found") }
            try await store.deleteToken(token.id)
            return REST.noContent()
        }
    }

    struct SignInAnswer: Encodable { var code: Int; var token: String; var expire: Date }

    // MARK: - Clusters

    func addClusters(_ api: RouteGroup) {
        let store = self.store
        api.get("scheduler-clusters") { request, context in
            _ = try context.requireSession()
            let page = try Pagination(request)
            let (items, total) = try await store.schedulerClusters(page: page.page, perPage: page.perPage,
                                                                   name: request.queryParameter("name"))
            return try REST.page(items, total: total, request: request, page: page)
        }
        api.post("scheduler-clusters") { request, context in
            _ = try context.requireSessionRoot()
            let body = try REST.body(SchedulerClusterInput.self, request)
            return try REST.json(try await store.createSchedulerCluster(body), status: .created)
        }
        api.get("scheduler-clusters/:id") { _, context in
            _ = try context.requireSession()
            return try REST.json(try await store.schedulerCluster(try REST.id(context)))
        }
        api.patch("scheduler-clusters/:id") { request, context in
            _ = try context.requireSessionRoot()
            let id = try REST.id(context)
            return try REST.json(try await store.updateSchedulerCluster(id, try REST.body(SchedulerClusterInput.self, request)))
        }
        api.delete("scheduler-clusters/:id") { _, context in
            _ = try context.requireSessionRoot()
            try await store.deleteSchedulerCluster(try REST.id(context))
            return REST.noContent()
        }
        api.get("seed-peer-clusters") { request, context in
            _ = try context.requireSession()
            let page = try Pagination(request)
            let (items, total) = try await store.seedPeerClusters(page: page.page, perPage: page.perPage,
                                                                  name: request.queryParameter("name"))
            return try REST.page(items, total: total, request: request, page: page)
        }
        api.post("seed-peer-clusters") { request, context in
            _ = try context.requireSessionRoot()
            let body = try REST.body(SeedPeerClusterInput.self, request)
            return try REST.json(try await store.createSeedPeerCluster(body), status: .created)
        }
        api.get("seed-peer-clusters/:id") { _, context in
            _ = try context.requireSession()
            return try REST.json(try await store.seedPeerCluster(try REST.id(context)))
        }
        api.patch("seed-peer-clusters/:id") { request, context in
            _ = try context.requireSessionRoot()
            let id = try REST.id(context)
            return try REST.json(try await store.updateSeedPeerCluster(id, try REST.body(SeedPeerClusterInput.self, request)))
        }
        api.delete("seed-peer-clusters/:id") { _, context in
            _ = try context.requireSessionRoot()
            try await store.deleteSeedPeerCluster(try REST.id(context))
            return REST.noContent()
        }
    }

    // MARK: - Live state, from the schedulers

    func addLiveState(_ api: RouteGroup) {
        let store = self.store, inspector = self.inspector
        api.get("scheduler-clusters/:id/hosts") { _, context in
            _ = try context.requireSession()
            let cluster = try await store.schedulerCluster(try REST.id(context))
            return try REST.json(try await inspector.hosts(clusterID: cluster.id))
        }
        api.get("scheduler-clusters/:id/tasks") { request, context in
            _ = try context.requireSession()
            let cluster = try await store.schedulerCluster(try REST.id(context))
            let limit = try request.queryParameter("limit").map { try Self.positive($0, "limit") } ?? 100
            return try REST.json(try await inspector.tasks(clusterID: cluster.id, limit: UInt32(min(limit, 1000))))
        }
        api.get("scheduler-clusters/:id/persistent-cache-tasks") { _, context in
            _ = try context.requireSession()
            let cluster = try await store.schedulerCluster(try REST.id(context))
            return try REST.json(try await inspector.persistentCacheTasks(clusterID: cluster.id))
        }
    }

    // MARK: - Schedulers and seed peers

    func addInstances(_ api: RouteGroup) {
        let store = self.store
        api.get("schedulers") { request, context in
            _ = try context.requireSession()
            let page = try Pagination(request)
            let cluster = try request.queryParameter("scheduler_cluster_id").map { try Self.positive($0, "scheduler_cluster_id") }
            let (items, total) = try await store.schedulers(page: page.page, perPage: page.perPage, clusterID: cluster,
                                                            state: request.queryParameter("state"))
            return try REST.page(items, total: total, request: request, page: page)
        }
        api.post("schedulers") { request, context in
            _ = try context.requireSessionRoot()
            return try REST.json(try await store.upsertScheduler(try REST.body(SchedulerInput.self, request)), status: .created)
        }
        api.get("schedulers/:id") { _, context in
            _ = try context.requireSession()
            return try REST.json(try await store.scheduler(try REST.id(context)))
        }
        api.patch("schedulers/:id") { request, context in
            _ = try context.requireSessionRoot()
            let id = try REST.id(context)
            return try REST.json(try await store.updateScheduler(id, try REST.body(SchedulerInput.self, request)))
        }
        api.delete("schedulers/:id") { _, context in
            _ = try context.requireSessionRoot()
            try await store.deleteScheduler(try REST.id(context))
            return REST.noContent()
        }
        api.get("seed-peers") { request, context in
            _ = try context.requireSession()
            let page = try Pagination(request)
            let cluster = try request.queryParameter("seed_peer_cluster_id").map { try Self.positive($0, "seed_peer_cluster_id") }
            let (items, total) = try await store.seedPeers(page: page.page, perPage: page.perPage, clusterID: cluster,
                                                           state: request.queryParameter("state"))
            return try REST.page(items, total: total, request: request, page: page)
        }
        api.post("seed-peers") { request, context in
            _ = try context.requireSessionRoot()
            return try REST.json(try await store.upsertSeedPeer(try REST.body(SeedPeerInput.self, request)), status: .created)
        }
        api.get("seed-peers/:id") { _, context in
            _ = try context.requireSession()
            return try REST.json(try await store.seedPeer(try REST.id(context)))
        }
        api.patch("seed-peers/:id") { request, context in
            _ = try context.requireSessionRoot()
            let id = try REST.id(context)
            return try REST.json(try await store.updateSeedPeer(id, try REST.body(SeedPeerInput.self, request)))
        }
        api.delete("seed-peers/:id") { _, context in
            _ = try context.requireSessionRoot()
            try await store.deleteSeedPeer(try REST.id(context))
            return REST.noContent()
        }
    }

    static func positive(_ text: String, _ name: String) throws -> UInt64 {
        guard let v = UInt64(text), v > 0 else { throw ManagerError(.invalid, "\(name) must be a positive integer") }
        return v
    }

    // MARK: - Jobs

    /// `/api/v1/jobs` takes sessions; `/oapi/v1/jobs` takes personal access tokens.
    func addJobs(_ group: RouteGroup, prefix: String, open: Bool) {
        let store = self.store
        group.get(prefix) { request, context in
            _ = open ? try context.requireToken(scope: .job) : try context.requireSession()
            let page = try Pagination(request)
            let (items, total) = try await store.jobs(page: page.page, perPage: page.perPage, type: request.queryParameter("type"),
                                                      state: request.queryParameter("state"))
            return try REST.page(items.map { $0.maskingSecrets() }, total: total, request: request, page: page)
        }
        group.post(prefix) { request, context in
            let user = open ? try context.requireWriter(scope: .job) : try context.requireSessionRoot()
            let body = try REST.body(JobInput.self, request)
            if body.type == "preheat" { _ = try PreheatArguments(body.args ?? .emptyObject) }  // refuse bad args now, not at run time
            return try REST.json(try await store.createJob(body, userID: user.id).maskingSecrets(), status: .created)
        }
        group.get("\(prefix)/:id") { _, context in
            _ = open ? try context.requireToken(scope: .job) : try context.requireSession()
            return try REST.json(try await store.job(try REST.id(context)).maskingSecrets())
        }
    }

    /// The seed's `POST /api/v1/preheat` and `GET /api/v1/preheat/{id}`: a preheat job
    /// under another name, for either kind of credential.
    func addPreheatAliases(_ api: RouteGroup) {
        let store = self.store
        api.post("preheat") { request, context in
            let user = try context.requireWriter(scope: .preheat)
            let args = try REST.body(JSONValue.self, request)
            _ = try PreheatArguments(args)
            var input = JobInput()
            input.type = "preheat"
            input.args = args
            let job = try await store.createJob(input, userID: user.id)
            return try REST.json(PreheatAnswer(job), status: .created)
        }
        api.get("preheat/:id") { _, context in
            if context.tokenScopes != nil { _ = try context.requireToken(scope: .preheat) } else { _ = try context.requireSession() }
            let job = try await store.job(try REST.id(context))
            guard job.type == "preheat" else { throw ManagerError(.notFound, "preheat \(job.id) not found") }
            return try REST.json(PreheatAnswer(job))
        }
    }

    struct PreheatAnswer: Encodable {
        var id: String
        var status: String
        var created_at: Date
        var job: JobRecord
        init(_ job: JobRecord) {
            id = String(job.id)
            status = job.state
            created_at = job.created_at
            self.job = job.maskingSecrets()
        }
    }
}
