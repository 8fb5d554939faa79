import GeneratedAPI
import RPCCore
import SchedulerCore

/// `dfswift.scheduler.v1.SchedulerInspect`: read-only views for the manager's console.
public struct SchedulerInspectService: Dfswift_Scheduler_V1_SchedulerInspectProvider {
    let engine: SchedulerEngine
    let persistentCache: ReplicaRegistry?

    public init(engine: SchedulerEngine, persistentCache: ReplicaRegistry? = nil) {
        self.engine = engine
        self.persistentCache = persistentCache
    }

    public func listPersistentCacheTasks(_ request: Dfswift_Scheduler_V1_ListPersistentCacheTasksRequest,
                                         context: RPCServerContext) async throws -> Dfswift_Scheduler_V1_ListPersistentCacheTasksResponse {
        var response = Dfswift_Scheduler_V1_ListPersistentCacheTasksResponse()
        guard let persistentCache else { return response }
        let hosts = await engine.hostDirectory()
        let names = await engine.hostnames()
        response.tasks = await persistentCache.list(hosts: hosts).prefix(1_000).map { task, peers in
            Dfswift_Scheduler_V1_PersistentCacheTaskSummary.with { s in
                s.id = task.id
                s.state = task.state
                s.contentLength = task.contentLength
                s.pieceLength = task.pieceLength
                s.pieceCount = task.pieceCount
                s.persistentReplicaCount = task.replicaCount
                s.currentPersistentReplicaCount = task.currentPersistentReplicaCount
                s.ttlSeconds = task.ttl.components.seconds
                s.tag = task.tag ?? ""
                s.application = task.application ?? ""
                s.createdAt = KeptTask.timestamp(task.createdAt)
                s.updatedAt = KeptTask.timestamp(task.updatedAt)
                s.replicas = peers.map { p in
                    Dfswift_Scheduler_V1_PersistentCacheReplica.with { r in
                        r.peerId = p.id
                        r.hostId = p.hostID
                        r.hostname = names[p.hostID] ?? ""
                        r.ip = p.host?.ip ?? ""
                        r.persistent = p.persistent
                        r.state = p.state
                        r.updatedAt = KeptTask.timestamp(p.updatedAt)
                    }
                }
            }
        }
        return response
    }

    public func listTasks(_ request: Dfswift_Scheduler_V1_ListTasksRequest,
                          context: RPCServerContext) async throws -> Dfswift_Scheduler_V1_ListTasksResponse {
        let limit = request.limit == 0 ? 100 : Int(min(request.limit, 1000))
        var response = Dfswift_Scheduler_V1_ListTasksResponse()
        response.tasks = await engine.taskSummaries(limit: limit)
        return response
    }
}
