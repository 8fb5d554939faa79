import DragonflyCommon
import Foundation
import GeneratedAPI
import Locking
import Logging
import ManagerCore
import Preheating
import RPCCore
import RPCTransport

/// Runs preheat jobs: each scheduler cluster's part goes to its scheduler (`PreheatImage`,
/// `PreheatFile`), which has the seed peers (or every peer, for `all_peers`) download each
/// blob or file the way a later pull will name it, so that pull is a cache hit. A cluster
/// whose scheduler does not take preheats has the manager ask the peers itself.
/// While a job runs its result shows its progress (downloads done, failed, in all).
/// PENDING jobs are claimed one runner at a time; RUNNING ones left by a stopped manager
/// are taken up again on start.
public actor PreheatRunner {
    let store: ManagerStore
    let logger: Logger
    let executor: PreheatExecutor
    /// For `ListHosts` and the preheats on schedulers.
    let schedulers: RPCChannelPool
    /// The cluster's registration secret, which schedulers require of preheat callers.
    let secret: String?

    /// `tls` is for calls to schedulers and peers that serve TLS.
    public init(store: ManagerStore, tls: TLSConfiguration? = nil, secret: String? = nil, logger: Logger) {
        self.store = store
        self.secret = secret
        self.logger = logger
        executor = PreheatExecutor(tls: tls, logger: logger)
        schedulers = RPCChannelPool { config in
            config.connectTimeout = .seconds(5)
            if case .tcp = config.target { config.tls = tls }
        }
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
        await executor.shutdown()
        await schedulers.closeAll()
    }

    func execute(_ job: JobRecord) async {
        logger.info("preheat job \(job.id) running")
        let outcome: (JobState, JSONValue)
        let progress = JobProgress(store: store, jobID: job.id)
        do {
            let args = try PreheatArguments(job.args)
            let (results, via) = try await withTimeout(args.timeout) {
                try await self.preheat(args, clusters: job.scheduler_cluster_ids, progress: progress)
            }
            let failed = results.filter { $0.state != "SUCCESS" }
            var result = try JSONValue(encoding: ["tasks": results])
            if case .object(var o) = result {
                o["via"] = .array(via.map { .string($0) })
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
        // Downloads cut off by a timeout may still report: their counts must not replace
        // the result.
        await progress.close()
        _ = try? await store.updateJob(job.id, state: outcome.0, result: outcome.1)
    }

    /// The job's downloads, and who ran each cluster's part (`scheduler HOST:PORT` or `manager`).
    func preheat(_ args: PreheatArguments, clusters: [UInt64], progress: JobProgress) async throws -> ([PreheatExecutor.Outcome], [String]) {
        var items: [PreheatPlan.Item] = []
        var headers = args.headers
        switch args.kind {
        case .file:
            items = args.urls.map { PreheatPlan.Item(url: $0) }
        case .image:
            // Resolved here too, for the job's per-blob progress and results.
            for url in args.urls {
                let resolved = try await executor.resolveImage(url, platform: args.platform, username: args.username,
                                                               password: args.password, headers: args.headers)
                if let auth = resolved.authorization { headers["Authorization"] = auth }
                items += resolved.items
            }
        }
        var download = Common_V2_Download()
        download.tag = args.tag
        download.application = args.application
        download.filteredQueryParams = args.filteredQueryParams
        download.requestHeader = headers
        download.pieceLength = args.pieceLength
        download.enableTaskIdBasedBlobDigest = args.taskIDBasedBlobDigest
        let call = SchedulerPreheatCall(args: args, secret: secret)
        // The share as the scheduler is sent it, so both plan the same peers.
        let selection = PeerSelection(ips: args.ips, count: args.count, percentage: call.percentage.map(Double.init))
        let scope = PreheatPlan.Scope(rawValue: args.scope.rawValue) ?? .singleSeedPeer
        let plan = PreheatPlan(items: items, download: download, scope: scope, selection: selection,
                               concurrentTaskCount: args.concurrentTaskCount, timeout: args.timeout)
        // Each cluster's scheduler plans over its own peers, as the manager lists them here.
        var parts: [(targets: [PreheatTarget], scheduler: SchedulerRecord?)] = []
        for id in clusters.isEmpty ? try await store.allSchedulerClusters().map(\.id) : clusters {
            let targets = selection.choose(from: try await candidates(scope, clusters: [id]), scope: scope)
            if !targets.isEmpty { parts.append((targets, try await store.activeSchedulers(clusterID: id).first)) }
        }
        guard !parts.isEmpty else {
            throw ManagerError(.notFound, scope == .allPeers ? "no peers in the scheduler clusters"
                                                            : "no active seed peer in the scheduler clusters")
        }
        await progress.start(work: parts.flatMap { plan.work(on: $0.targets) }.map {
            JobProgress.Download(url: $0.item.url, peer: $0.target.address, hostname: $0.target.hostname, state: "PENDING")
        })
        var outcomes: [PreheatExecutor.Outcome] = []
        var via: [String] = []
        for part in parts {
            if let scheduler = part.scheduler,
               let done = await throughScheduler(scheduler, call, plan, part.targets, progress: progress, before: outcomes) {
                outcomes += done
                via.append("scheduler " + PreheatTarget(ip: scheduler.ip, port: Int(scheduler.port), isSeed: false).address)
                continue
            }
            // No scheduler, or one that does not preheat (an older one): the manager asks the peers itself.
            outcomes += await executor.run(plan, on: part.targets) { outcome in await progress.record(outcome) }
            via.append("manager")
        }
        return (outcomes.sorted { ($0.url, $0.peer) < ($1.url, $1.peer) }, via)
    }

    /// The cluster's part of the job, run by its scheduler; while it runs, the peers are
    /// asked which of their items they hold, for the job's progress; at the end, each
    /// (item, peer) is a success if the peer holds it. nil when the scheduler does not take
    /// preheats (UNIMPLEMENTED, it refuses this manager, or it cannot be reached): the
    /// caller runs them itself (what the scheduler did already is a cache hit then).
    func throughScheduler(_ scheduler: SchedulerRecord, _ call: SchedulerPreheatCall, _ plan: PreheatPlan, _ targets: [PreheatTarget],
                          progress: JobProgress, before: [PreheatExecutor.Outcome]) async -> [PreheatExecutor.Outcome]? {
        let address = PreheatTarget(ip: scheduler.ip, port: Int(scheduler.port), isSeed: false).address
        guard let channel = try? schedulers.channel(address) else { return nil }
        let client = Scheduler_V2_SchedulerClient(RPCClient(transport: channel))
        let ended = Locked<RPCError??>(nil)
        let running = Task {
            var failure: RPCError?
            do { try await call.run(client) } catch { failure = RPCError.wrapping(error) }
            ended.withLock { $0 = .some(failure) }
        }
        _ = running
        let work = plan.work(on: targets)
        await progress.mark(work.map { ($0.item.url, $0.target.address) }, "RUNNING")
        let doneBefore = before.count, failedBefore = before.filter { $0.state != "SUCCESS" }.count
        // A survey asks every peer about every item: spaced out for large jobs.
        let interval = Duration.seconds(min(30, max(1, work.count / 100)))
        var next = ContinuousClock.now + interval
        while ended.withLock({ $0 }) == nil {
            try? await Task.sleep(for: .milliseconds(200))
            guard ContinuousClock.now >= next else { continue }
            next = ContinuousClock.now + interval
            let held = await cachedPairs(plan, targets)
            let finished = work.filter { held.contains(Pair(url: $0.item.url, address: $0.target.address)) }
            await progress.mark(finished.map { ($0.item.url, $0.target.address) }, "SUCCESS")
            await progress.set(done: doneBefore + finished.count, failed: failedBefore)
        }
        let failure = ended.withLock { $0 } ?? nil
        if let failure, [.unimplemented, .permissionDenied, .unauthenticated, .unavailable].contains(failure.code) {
            logger.warning("scheduler \(address) did not take the preheat (\(failure.message)); the manager runs it")
            return nil
        }
        let held = await cachedPairs(plan, targets)
        let outcomes = work.map { w in
            let ok = held.contains(Pair(url: w.item.url, address: w.target.address))
            return PreheatExecutor.Outcome(url: w.item.url, peer: w.target.address, hostname: w.target.hostname,
                                           task_id: (try? PreheatPlan.taskID(of: plan.request(for: w.item))) ?? "",
                                           state: ok ? "SUCCESS" : "FAILURE",
                                           error: ok ? nil : (failure?.message ?? "not in the peer's cache after the scheduler's preheat"))
        }
        for outcome in outcomes { await progress.mark([(outcome.url, outcome.peer)], outcome.state) }
        await progress.set(done: doneBefore + outcomes.count, failed: failedBefore + outcomes.filter { $0.state != "SUCCESS" }.count)
        logger.info("preheat through scheduler \(address): \(outcomes.filter { $0.state == "SUCCESS" }.count) of \(outcomes.count) downloads done")
        return outcomes
    }

    struct Pair: Hashable { let url: String; let address: String }

    /// The (item, peer) pairs the peers hold complete now.
    func cachedPairs(_ plan: PreheatPlan, _ targets: [PreheatTarget]) async -> Set<Pair> {
        var held: Set<Pair> = []
        for (target, finished) in await executor.cached(plan, on: targets) {
            for (item, ok) in finished where ok { held.insert(Pair(url: item.url, address: target.address)) }
        }
        return held
    }

    /// The dfdaemons a scope draws from: the clusters' active seed peers, or for
    /// `all_peers` every host their schedulers know.
    func candidates(_ scope: PreheatPlan.Scope, clusters: [UInt64]) async throws -> [PreheatTarget] {
        let clusterIDs = clusters.isEmpty ? try await store.allSchedulerClusters().map(\.id) : clusters
        var found: Set<PreheatTarget> = []
        for id in clusterIDs {
            if scope == .allPeers {
                for scheduler in try await store.activeSchedulers(clusterID: id) {
                    found.formUnion(await hosts(of: scheduler))
                }
            } else {
                for seed in try await store.activeSeedPeers(schedulerClusterID: id) {
                    found.insert(PreheatTarget(ip: seed.ip, port: Int(seed.port), hostname: seed.hostname, isSeed: true))
                }
            }
        }
        return found.sorted()
    }

    /// Every host a scheduler knows (seed peers and normal peers alike).
    func hosts(of scheduler: SchedulerRecord) async -> [PreheatTarget] {
        let address = PreheatTarget(ip: scheduler.ip, port: Int(scheduler.port), isSeed: false).address
        guard let channel = try? schedulers.channel(address) else { return [] }
        let client = Scheduler_V2_SchedulerClient(RPCClient(transport: channel))
        let answer = try? await client.listHosts(Scheduler_V2_ListHostsRequest(), options: CallOptions(timeout: .seconds(10)))
        return answer?.hosts.map { PreheatTarget(ip: $0.ip, port: Int($0.port), hostname: $0.hostname, isSeed: $0.type != 0) } ?? []
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
