import GeneratedAPI
import RPCCore
import SchedulerCore

/// `dfswift.scheduler.v1.SchedulerInspect`: read-only views for the manager's console.
public struct SchedulerInspectService: Dfswift_Scheduler_V1_SchedulerInspectProvider {
    let engine: SchedulerEngine

    public init(engine: SchedulerEngine) { self.engine = engine }

    public func listTasks(_ request: Dfswift_Scheduler_V1_ListTasksRequest,
                          context: RPCServerContext) async throws -> Dfswift_Scheduler_V1_ListTasksResponse {
        let limit = request.limit == 0 ? 100 : Int(min(request.limit, 1000))
        var response = Dfswift_Scheduler_V1_ListTasksResponse()
        response.tasks = await engine.taskSummaries(limit: limit)
        return response
    }
}
