import DragonflyCommon
import GeneratedAPI
import Logging
import Preheating
import RPCCore
import RPCTransport
import SchedulerCore

/// `PreheatImage`, `PreheatFile`, `StatImage` and `StatFile`, as Dragonfly 2.4's scheduler
/// serves them: this scheduler knows the cluster's peers, so it picks the ones a preheat
/// reaches and asks each to fetch (or says which of them hold what).
public final class SchedulerPreheat: Sendable {
    let engine: SchedulerEngine
    let executor: PreheatExecutor
    let access: PreheatAccess

    /// `tls` is for calls to dfdaemons that serve TLS.
    public init(engine: SchedulerEngine, access: PreheatAccess, tls: TLSConfiguration?, logger: Logger) {
        self.engine = engine
        self.access = access
        executor = PreheatExecutor(tls: tls, logger: logger)
    }

    public func shutdown() async { await executor.shutdown() }

    /// The hosts this scheduler knows, as preheat targets.
    func hosts() async -> [PreheatTarget] {
        await engine.listHosts(type: nil).compactMap { host in
            guard !host.ip.isEmpty, host.port > 0 else { return nil }
            return PreheatTarget(ip: host.ip, port: Int(host.port), hostname: host.hostname, isSeed: host.type != 0)
        }
    }

    /// Runs `plan` on the peers it chooses; fails unless every download succeeded.
    func preheat(_ plan: PreheatPlan) async throws {
        let targets = plan.selection.choose(from: await hosts(), scope: plan.scope)
        guard !targets.isEmpty else {
            throw RPCError(code: .failedPrecondition, message: plan.scope == .allPeers ? "no peers to preheat on"
                                                                                        : "no seed peer to preheat on")
        }
        let outcomes = try await withPreheatTimeout(plan.timeout) { await self.executor.run(plan, on: targets) }
        let failed = outcomes.filter { $0.state != "SUCCESS" }
        if let first = failed.first {
            throw RPCError(code: .internal,
                           message: "\(failed.count) of \(outcomes.count) downloads failed; first: \(first.url) on \(first.peer): \(first.error ?? "?")")
        }
    }

    /// Which of `plan`'s items each peer in its scope holds complete.
    func survey(_ plan: PreheatPlan) async -> [(target: PreheatTarget, finished: [PreheatPlan.Item: Bool])] {
        let targets = plan.selection.choose(from: await hosts(), scope: plan.scope)
        return await executor.cached(plan, on: targets)
    }
}

struct PreheatTimedOut: Error {}

func withPreheatTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw RPCError(code: .deadlineExceeded, message: "the preheat did not finish within its timeout")
        }
        return value
    }
}
