import AsyncHTTPClient
import DragonflyCommon
import Foundation
import GeneratedAPI
import Logging
import ManagerCore
import RegistryClient
import RPCCore
import RPCTransport

/// Runs preheat jobs: resolves an image to its blobs (or takes the file URLs), then asks
/// the seed peers (or every peer, for `all_peers`) of the job's scheduler clusters to
/// download each one, the way a later pull will name it, so that pull is a cache hit.
/// PENDING jobs are claimed one runner at a time; RUNNING ones left by a stopped manager
/// are taken up again on start.
public actor PreheatRunner {
    let store: ManagerStore
    let logger: Logger
    let http: HTTPClient
    let peers: RPCChannelPool
    /// Which addresses the manager fetches manifests and tokens from: never link-local or
    /// cloud-metadata ones, where a job's URL could otherwise read instance credentials.
    let originPolicy = OriginAddressPolicy()

    static func refusal(of url: String, under policy: OriginAddressPolicy) async -> String? {
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = c.host, !host.isEmpty else { return "not an http(s) URL with a host" }
        return await policy.refusal(forHost: host)
    }

    /// `tls` is for calls to schedulers and peers that serve TLS.
    public init(store: ManagerStore, tls: TLSConfiguration? = nil, logger: Logger) {
        self.store = store
        self.logger = logger
        peers = RPCChannelPool { config in
            config.connectTimeout = .seconds(5)
            if case .tcp = config.target { config.tls = tls }
        }
        // Redirects are not followed: every URL the manager fetches passes `originPolicy`.
        var config = HTTPClient.Configuration(redirectConfiguration: .disallow)
        config.timeout = .init(connect: .seconds(10), read: .seconds(60))
        http = HTTPClient(configuration: config)
    }

    public func run() async {
        // A job RUNNING at start was cut off by a stop: run it again.
        for job in (try? await store.jobs(type: "preheat", state: .running)) ?? [] {
            await execute(job)
        }
        while !Task.isCancelled {
            for job in (try? await store.jobs(type: "preheat", state: .pending)) ?? [] {
                guard (try? await store.claimJob(job.id, from: .pending)) == true else { continue }
                await execute(job)
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
        try? await http.shutdown()
        await peers.closeAll()
    }

    struct TaskResult: Encodable {
        var url: String
        var peer: String
        var task_id: String
        var state: String
        var error: String?
    }

    func execute(_ job: JobRecord) async {
        logger.info("preheat job \(job.id) running")
        let outcome: (JobState, JSONValue)
        do {
            let args = try PreheatArguments(job.args)
            let results = try await withTimeout(args.timeout) { try await self.preheat(args, clusters: job.scheduler_cluster_ids) }
            let failed = results.filter { $0.state != "SUCCESS" }
            var result = try JSONValue(encoding: ["tasks": results])
            if case .object(var o) = result {
                o["total"] = .number(Double(results.count))
                o["failed"] = .number(Double(failed.count))
                if let first = failed.first { o["message"] = .string("\(failed.count) of \(results.count) downloads failed; first: \(first.error ?? "?")") }
                result = .object(o)
            }
            outcome = (failed.isEmpty ? .success : .failure, result)
        } catch {
            outcome = (.failure, .object(["message": .string("\(error)")]))
        }
        logger.info("preheat job \(job.id): \(outcome.0.rawValue)")
        _ = try? await store.updateJob(job.id, state: outcome.0, result: outcome.1)
    }

    func preheat(_ args: PreheatArguments, clusters: [UInt64]) async throws -> [TaskResult] {
        var downloads: [(url: String, digest: String?)] = []
        var headers = args.headers
        switch args.kind {
        case .file:
            downloads = args.urls.map { ($0, nil) }
        case .image:
            let policy = originPolicy
            let resolver = ImageResolver(client: http, check: { url in await Self.refusal(of: url, under: policy) })
            for url in args.urls {
                let image = try ImageReference.parse(url)
                let resolved = try await resolver.resolve(image, platform: args.platform, username: args.username,
                                                          password: args.password, headers: args.headers)
                if let auth = resolved.authorization { headers["Authorization"] = auth }
                downloads += resolved.blobs.map { ($0.url, $0.digest) }
            }
        }
        let targets = Self.narrow(try await targetPeers(args.scope, clusters: clusters), args)
        guard !targets.isEmpty else {
            throw ManagerError(.notFound, args.scope == .allPeers ? "no peers in the scheduler clusters"
                                                                  : "no active seed peer in the scheduler clusters")
        }
        var work: [(url: String, digest: String?, peer: String)] = []
        for d in downloads {
            let chosen = args.scope == .singleSeedPeer ? [Self.rendezvous(d.url, targets)] : targets
            work += chosen.map { (d.url, d.digest, $0) }
        }
        let sharedHeaders = headers
        return await withTaskGroup(of: TaskResult.self) { group in
            var results: [TaskResult] = []
            var next = 0
            func launch() {
                guard next < work.count else { return }
                let w = work[next]
                next += 1
                group.addTask { await self.download(w.url, digest: w.digest, on: w.peer, args: args, headers: sharedHeaders) }
            }
            for _ in 0..<args.concurrentTaskCount { launch() }
            while let r = await group.next() {
                results.append(r)
                launch()
            }
            return results.sorted { ($0.url, $0.peer) < ($1.url, $1.peer) }
        }
    }

    /// `host:port` of the dfdaemons that should hold the content.
    func targetPeers(_ scope: PreheatArguments.Scope, clusters: [UInt64]) async throws -> [String] {
        let clusterIDs = clusters.isEmpty ? try await store.allSchedulerClusters().map(\.id) : clusters
        var addresses: Set<String> = []
        for id in clusterIDs {
            if scope == .allPeers {
                for scheduler in try await store.activeSchedulers(clusterID: id) {
                    addresses.formUnion(await hosts(of: scheduler))
                }
            } else {
                for seed in try await store.activeSeedPeers(schedulerClusterID: id) {
                    addresses.insert(Self.address(seed.ip, Int(seed.port)))
                }
            }
        }
        return addresses.sorted()
    }

    /// Applies `ips`, then `count` or `percentage` (rounded up, at least one).
    static func narrow(_ addresses: [String], _ args: PreheatArguments) -> [String] {
        var chosen = addresses
        if !args.ips.isEmpty {
            chosen = chosen.filter { address in
                let ip = address.hasPrefix("[") ? String(address.dropFirst().prefix { $0 != "]" }) : String(address.prefix { $0 != ":" })
                return args.ips.contains(ip)
            }
        }
        if let count = args.count { chosen = Array(chosen.prefix(count)) }
        if let percentage = args.percentage {
            chosen = Array(chosen.prefix(max(1, Int((Double(chosen.count) * percentage / 100).rounded(.up)))))
        }
        return chosen
    }

    /// Every host a scheduler knows (seed peers and normal peers alike).
    func hosts(of scheduler: SchedulerRecord) async -> [String] {
        guard let channel = try? peers.channel(Self.address(scheduler.ip, Int(scheduler.port))) else { return [] }
        let client = Scheduler_V2_SchedulerClient(RPCClient(transport: channel))
        let answer = try? await client.listHosts(Scheduler_V2_ListHostsRequest(), options: CallOptions(timeout: .seconds(10)))
        return answer?.hosts.map { Self.address($0.ip, Int($0.port)) } ?? []
    }

    func download(_ url: String, digest: String?, on peer: String, args: PreheatArguments, headers: [String: String]) async -> TaskResult {
        var result = TaskResult(url: url, peer: peer, task_id: "", state: "FAILURE", error: nil)
        do {
            let client = Dfdaemon_V2_DfdaemonUploadClient(RPCClient(transport: try peers.channel(peer)))
            var download = Common_V2_Download()
            download.url = url
            download.digest = digest
            download.tag = args.tag
            download.application = args.application
            download.filteredQueryParams = args.filteredQueryParams
            download.requestHeader = headers
            download.pieceLength = args.pieceLength
            download.enableTaskIdBasedBlobDigest = args.taskIDBasedBlobDigest
            var request = Dfdaemon_V2_DownloadTaskRequest()
            request.download = download
            let call = try await client.downloadTask(request, options: CallOptions(timeout: args.timeout))
            for try await message in call.responses where !message.taskId.isEmpty {
                result.task_id = message.taskId
            }
            result.state = "SUCCESS"
        } catch {
            result.error = "\(error)"
            logger.warning("preheat of \(url) on \(peer) failed: \(error)")
        }
        return result
    }

    static func address(_ ip: String, _ port: Int) -> String { ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)" }

    /// The same seed peer for the same URL every time, spread evenly over seed peers.
    static func rendezvous(_ url: String, _ peers: [String]) -> String {
        peers.max { hash(url + $0) < hash(url + $1) } ?? peers[0]
    }

    static func hash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return h
    }
}

extension JSONValue {
    init<T: Encodable>(encoding value: T) throws {
        self = try JSONCoding.decoder.decode(JSONValue.self, from: JSONCoding.encoder.encode(value))
    }
}

struct PreheatTimeout: Error, CustomStringConvertible {
    var description: String { "the preheat did not finish within its timeout" }
}

func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw PreheatTimeout()
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw PreheatTimeout() }
        return first
    }
}
