import DragonflyCommon
import Foundation
import GeneratedAPI
import Locking
import Logging
import RPCCore
import RPCTransport
import SchedulerCore

/// Keeps the tasks of one kind (persistent cache tasks, or persistent tasks) at their
/// replica count: asks hosts to hold a copy (seed peers first), forgets hosts that left or
/// went silent and replaces their copies, drops tasks past their TTL, and tells hosts to
/// delete copies of a deleted task.
public final class ReplicaKeeper: Sendable {
    public enum Kind: Sendable {
        case persistentCache, persistent

        var noun: String { self == .persistentCache ? "persistent cache task" : "persistent task" }
        var stateFile: String { self == .persistentCache ? "persistent-cache-tasks.json" : "persistent-tasks.json" }
    }

    public let kind: Kind
    public let registry: ReplicaRegistry
    let engine: SchedulerEngine
    /// Deleting is for the cluster's own callers, as preheating is.
    let access: PreheatAccess
    private let channels: RPCChannelPool
    /// Presented to hosts when telling them to delete a copy (they take it from the cluster only).
    private let secret: String?
    private let logger: Logger
    /// Replications under way (task id + host id), so one is not asked twice at once.
    private let replicating = ReplicationSet()
    /// Where the registry is kept between runs; nil keeps it in memory only.
    private let stateFile: String?
    /// Until then, hosts are not forgotten for being unknown: after a restart they have not
    /// announced themselves yet, and their copies must not be replaced for that.
    private let forgetHostsAfter: Locked<ContinuousClock.Instant>
    static let restartGrace: Duration = .seconds(30)

    /// `dataDir`: where the registry is kept between runs (nil: in memory only).
    public init(_ kind: Kind, engine: SchedulerEngine, access: PreheatAccess, secret: String?, tls: TLSConfiguration?,
                candidateParentLimit: Int, dataDir: String? = nil, logger: Logger) {
        self.kind = kind
        self.engine = engine
        self.secret = secret
        self.stateFile = dataDir.map { ($0 as NSString).appendingPathComponent(kind.stateFile) }
        self.forgetHostsAfter = Locked(.now)
        self.access = access
        self.registry = ReplicaRegistry(noun: kind.noun, candidateParentLimit: candidateParentLimit)
        self.logger = logger
        channels = RPCChannelPool { config in
            config.connectTimeout = .seconds(3)
            if case .tcp = config.target { config.tls = tls }
        }
    }

    /// Loads the tasks an earlier run kept, if any.
    public func restore() async {
        guard let stateFile, let data = FileManager.default.contents(atPath: stateFile) else { return }
        let count = await registry.restore(data)
        if count > 0 {
            forgetHostsAfter.withLock { $0 = .now + Self.restartGrace }
            logger.info("\(kind.noun)s: restored \(count) task(s) from \(stateFile)")
        }
    }

    /// Reconciles and saves every `interval` until cancelled.
    public func run(interval: Duration = .seconds(2)) async {
        while !Task.isCancelled {
            await reconcile()
            await save()
            try? await Task.sleep(for: interval)
        }
    }

    /// Writes the registry if it changed (write-then-rename: a crash leaves the old or new).
    public func save() async {
        guard let stateFile, let data = await registry.snapshotIfChanged() else { return }
        do {
            try data.write(to: URL(fileURLWithPath: stateFile), options: .atomic)
        } catch {
            logger.warning("\(kind.noun)s: cannot save \(stateFile): \(error)")
        }
    }

    /// One pass: hosts gone take their copies with them; every task short of its replica
    /// count gets cached copies made persistent, then new ones on other hosts.
    public func reconcile() async {
        let hosts = await engine.hostDirectory()
        let forgotten = forgetHostsAfter.withLock { $0 } <= .now ? await registry.forgetHosts(except: Set(hosts.keys)) : 0
        if forgotten > 0 { logger.info("\(kind.noun)s: forgot \(forgotten) replica(s) on hosts that left") }
        let seeds = await engine.seedHostIDs()
        for shortfall in await registry.shortfalls() {
            for (peerID, hostID) in shortfall.promote {
                guard let host = hosts[hostID] else { continue }
                do {
                    try await markPersistent(shortfall.task.id, on: host)
                    await registry.markPersistent(taskID: shortfall.task.id, peerID: peerID)
                } catch {
                    logger.warning("\(kind.noun)s: host \(hostID) could not make its copy of \(shortfall.task.id) persistent: \(error)")
                }
            }
            guard shortfall.missing > 0 else { continue }
            // Seed peers first (they are there to hold the cluster's content), then others;
            // the order among equals is by id, so every pass asks the same hosts.
            let targets = hosts.values.filter { !shortfall.occupied.contains($0.id) && !$0.disableShared }
                .sorted { a, b in
                    let (sa, sb) = (seeds.contains(a.id), seeds.contains(b.id))
                    return sa != sb ? sa : a.id < b.id
                }
            var asked = 0
            for host in targets where asked < shortfall.missing {
                guard replicating.begin(shortfall.task.id + "/" + host.id) else { asked += 1; continue }
                asked += 1
                let task = shortfall.task
                Task { await self.replicate(task, to: host) }
            }
            if asked < shortfall.missing {
                logger.warning("\(kind.noun)s: task \(shortfall.task.id) needs \(shortfall.missing) more replica(s) but only \(asked) host(s) can take one")
            }
        }
    }

    /// Has `host` fetch the task from its peers as a persistent replica; the host registers
    /// with the scheduler like any downloader, so the registry learns of it from there.
    private func replicate(_ task: KeptTask, to host: Common_V2_Host) async {
        defer { replicating.end(task.id + "/" + host.id) }
        do {
            let client = try uploadClient(host)
            let options = CallOptions(timeout: .seconds(3600))
            switch kind {
            case .persistentCache:
                let call = try await client.downloadPersistentCacheTask(Dfdaemon_V2_DownloadPersistentCacheTaskRequest.with {
                    $0.taskId = task.id
                    $0.persistent = true
                    $0.tag = task.tag
                    $0.application = task.application
                }, options: options)
                for try await _ in call.responses {}
            case .persistent:
                let call = try await client.downloadPersistentTask(Dfdaemon_V2_DownloadPersistentTaskRequest.with {
                    $0.url = task.url ?? ""
                    $0.persistent = true
                }, options: options)
                for try await _ in call.responses {}
            }
            logger.info("\(kind.noun)s: host \(host.id) holds a replica of \(task.id)")
        } catch {
            logger.warning("\(kind.noun)s: host \(host.id) could not fetch a replica of \(task.id): \(error)")
        }
    }

    private func markPersistent(_ taskID: String, on host: Common_V2_Host) async throws {
        let client = try uploadClient(host)
        let options = CallOptions(timeout: .seconds(10))
        switch kind {
        case .persistentCache:
            _ = try await client.updatePersistentCacheTask(Dfdaemon_V2_UpdatePersistentCacheTaskRequest.with {
                $0.taskId = taskID
                $0.persistent = true
            }, options: options)
        case .persistent:
            _ = try await client.updatePersistentTask(Dfdaemon_V2_UpdatePersistentTaskRequest.with {
                $0.taskId = taskID
                $0.persistent = true
            }, options: options)
        }
    }

    /// A peer that says it finished is counted only if its host holds every piece: any TCP
    /// client may announce a peer, and a copy claimed but not held would make the replica
    /// count look met. The host is asked (Sync*Pieces on its upload port); a claim it does
    /// not back within `verifyTimeout` fails the peer, and the next pass replaces the copy.
    public func verifyInBackground(taskID: String, peerID: String) {
        Task { await self.verify(taskID: taskID, peerID: peerID) }
    }

    static let verifyTimeout: Duration = .seconds(30)

    func verify(taskID: String, peerID: String) async {
        let hosts = await engine.hostDirectory()
        guard let peer = try? await registry.statPeer(taskID: taskID, peerID: peerID, hosts: hosts) else { return }
        let wanted = Int(peer.task.pieceCount)
        var held = Set<UInt32>()
        if let host = peer.host {
            do {
                let client = try uploadClient(host)
                let options = CallOptions(timeout: Self.verifyTimeout)
                switch kind {
                case .persistentCache:
                    let call = try await client.syncPersistentCachePieces(Dfdaemon_V2_SyncPersistentCachePiecesRequest.with {
                        $0.hostId = "scheduler"
                        $0.taskId = taskID
                    }, options: options)
                    for try await p in call.responses where p.number < peer.task.pieceCount { held.insert(p.number) }
                case .persistent:
                    let call = try await client.syncPersistentPieces(Dfdaemon_V2_SyncPersistentPiecesRequest.with {
                        $0.hostId = "scheduler"
                        $0.taskId = taskID
                    }, options: options)
                    for try await p in call.responses where p.number < peer.task.pieceCount { held.insert(p.number) }
                }
            } catch {
                logger.debug("\(kind.noun)s: asking host \(peer.hostID) for \(taskID): \(error)")
            }
        }
        guard held.count < wanted else { return }
        logger.warning("\(kind.noun)s: peer \(peerID) said it holds \(taskID), but its host \(peer.hostID) has \(held.count) of \(wanted) pieces")
        await registry.peerFailed(taskID: taskID, peerID: peerID)
        await reconcile()
    }

    /// Tells each host to drop its copy; a host that cannot be reached drops it at the TTL.
    func deleteCopies(of taskID: String, on hostIDs: [String]) async {
        let hosts = await engine.hostDirectory()
        for id in hostIDs {
            guard let host = hosts[id] else { continue }
            var options = CallOptions(timeout: .seconds(10))
            if let secret { options.metadata.add(PreheatAccess.metadataKey, secret) }
            do {
                let client = try uploadClient(host)
                switch kind {
                case .persistentCache:
                    _ = try await client.deletePersistentCacheTask(Dfdaemon_V2_DeletePersistentCacheTaskRequest.with { $0.taskId = taskID },
                                                                   options: options)
                case .persistent:
                    _ = try await client.deletePersistentTask(Dfdaemon_V2_DeletePersistentTaskRequest.with { $0.taskId = taskID },
                                                              options: options)
                }
            } catch {
                logger.warning("\(kind.noun)s: host \(id) did not delete its copy of \(taskID): \(error)")
            }
        }
    }

    private func uploadClient(_ host: Common_V2_Host) throws -> Dfdaemon_V2_DfdaemonUploadClient {
        let port = host.port > 0 ? host.port : host.downloadPort
        let address = host.ip.contains(":") ? "[\(host.ip)]:\(port)" : "\(host.ip):\(port)"
        return Dfdaemon_V2_DfdaemonUploadClient(RPCClient(transport: try channels.channel(address)))
    }

    public func shutdown() async {
        await save()
        await channels.closeAll()
    }
}

final class ReplicationSet: Sendable {
    private let keys = Locked<Set<String>>([])
    func begin(_ key: String) -> Bool { keys.withLock { $0.insert(key).inserted } }
    func end(_ key: String) { _ = keys.withLock { $0.remove(key) } }
}
