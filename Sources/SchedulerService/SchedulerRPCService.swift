import GeneratedAPI
import Logging
import RPCCore
import SchedulerCore

/// `scheduler.v2.Scheduler`: validates requests and hands them to the engine. Methods of
/// the official API we do not implement answer UNIMPLEMENTED (the generated defaults).
public struct SchedulerRPCService: Scheduler_V2_SchedulerProvider {
    let engine: SchedulerEngine
    let scheduling: Scheduling
    let metrics: SchedulerMetrics
    let logger: Logger
    /// The preheat methods; nil answers them UNIMPLEMENTED.
    let preheats: SchedulerPreheat?
    /// Persistent cache tasks and persistent tasks; nil answers them UNIMPLEMENTED.
    let persistentCache: ReplicaKeeper?
    let persistentTasks: ReplicaKeeper?

    public init(engine: SchedulerEngine, settings: SchedulerSettings, metrics: SchedulerMetrics, preheats: SchedulerPreheat? = nil,
                persistentCache: ReplicaKeeper? = nil, persistentTasks: ReplicaKeeper? = nil,
                logger: Logger = Logger(label: "scheduler.rpc")) {
        self.persistentTasks = persistentTasks
        self.engine = engine
        self.preheats = preheats
        self.persistentCache = persistentCache
        self.scheduling = Scheduling(engine: engine, retryInterval: settings.retryInterval)
        self.metrics = metrics
        self.logger = logger
    }

    public func announceHost(_ request: Scheduler_V2_AnnounceHostRequest, context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        guard let host = request.host, !host.id.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "host with an id is required")
        }
        await engine.announceHost(host, interval: request.interval.map { $0.duration })
        return Google_Protobuf_Empty()
    }

    public func listHosts(_ request: Scheduler_V2_ListHostsRequest, context: RPCServerContext) async throws -> Scheduler_V2_ListHostsResponse {
        var response = Scheduler_V2_ListHostsResponse()
        response.hosts = await engine.listHosts(type: request.type)
        return response
    }

    public func deleteHost(_ request: Scheduler_V2_DeleteHostRequest, context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        let orphans = try await engine.deleteHost(request.hostId)
        await rescheduleInBackground(orphans)
        return Google_Protobuf_Empty()
    }

    public func statPeer(_ request: Scheduler_V2_StatPeerRequest, context: RPCServerContext) async throws -> Common_V2_Peer {
        try await engine.statPeer(peerID: request.peerId)
    }

    public func deletePeer(_ request: Scheduler_V2_DeletePeerRequest, context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        await rescheduleInBackground(engine.deletePeer(peerID: request.peerId))
        return Google_Protobuf_Empty()
    }

    public func statTask(_ request: Scheduler_V2_StatTaskRequest, context: RPCServerContext) async throws -> Common_V2_Task {
        try await engine.statTask(taskID: request.taskId)
    }

    public func deleteTask(_ request: Scheduler_V2_DeleteTaskRequest, context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        let orphans = try await engine.deleteTask(hostID: request.hostId, taskID: request.taskId)
        await rescheduleInBackground(orphans)
        return Google_Protobuf_Empty()
    }

    /// Children of a peer that left get new parents from the scheduler, not only when
    /// they notice failures themselves.
    func rescheduleInBackground(_ peerIDs: [String]) async {
        let ready = await engine.reschedulable(peerIDs)
        for id in ready {
            let scheduling = self.scheduling
            let logger = self.logger
            Task {
                do { try await scheduling.scheduleCandidateParents(peerID: id) } catch {
                    logger.debug("rescheduling \(id) after its parent left failed: \(error)")
                }
            }
        }
    }
}
