import Locking
import GeneratedAPI
import RPCCore

/// `grpc.health.v1.Health`: per-service serving status; "" is the server as a whole.
public final class HealthService: Grpc_Health_V1_HealthProvider {
    public typealias Status = Grpc_Health_V1_HealthCheckResponse.ServingStatus

    private struct State {
        var statuses: [String: Status] = [:]
        var watchers: [Int: (service: String, buffer: InboundBuffer<Status>)] = [:]
        var nextWatcher = 0
    }
    private let state = Locked(State())

    public init(services: [String]) {
        state.withLock { s in
            s.statuses[""] = .serving
            for name in services { s.statuses[name] = .serving }
        }
    }

    /// Changes a service's status; every `Watch` of it hears about it.
    public func setStatus(_ status: Status, for service: String) {
        let targets = state.withLock { s -> [InboundBuffer<Status>] in
            s.statuses[service] = status
            return s.watchers.values.filter { $0.service == service }.map(\.buffer)
        }
        for t in targets { t.yield(status) }
    }

    public func check(_ request: Grpc_Health_V1_HealthCheckRequest, context: RPCServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard let status = state.withLock({ $0.statuses[request.service] }) else {
            throw RPCError(code: .notFound, message: "unknown service \(request.service)")
        }
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = status
        return response
    }

    public func list(_ request: Grpc_Health_V1_HealthListRequest, context: RPCServerContext) async throws -> Grpc_Health_V1_HealthListResponse {
        var response = Grpc_Health_V1_HealthListResponse()
        for (name, status) in state.withLock({ $0.statuses }) {
            var r = Grpc_Health_V1_HealthCheckResponse()
            r.status = status
            response.statuses[name] = r
        }
        return response
    }

    public func watch(_ request: Grpc_Health_V1_HealthCheckRequest, responses: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
                      context: RPCServerContext) async throws {
        // Only the latest status matters to a watcher, so a small buffer is enough.
        let buffer = InboundBuffer<Status>(highWatermark: 64)
        let (id, current) = state.withLock { s -> (Int, Status?) in
            let id = s.nextWatcher
            s.nextWatcher += 1
            s.watchers[id] = (request.service, buffer)
            return (id, s.statuses[request.service])
        }
        defer { _ = state.withLock { $0.watchers.removeValue(forKey: id) } }
        var last = current ?? .serviceUnknown
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = last
        try await responses.write(response)
        while let next = try await buffer.next() {
            guard next != last else { continue }
            last = next
            response.status = next
            try await responses.write(response)
        }
    }
}
