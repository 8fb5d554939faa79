import Foundation
import GeneratedAPI
import Logging
import ManagerCore
import RPCCore

/// `manager.v2.Manager`: where schedulers and seed peers register and keep alive, and
/// where dfdaemons learn which schedulers to use.
public struct ManagerRPCService: Manager_V2_ManagerProvider {
    let store: ManagerStore
    let logger: Logger
    let registration: RegistrationGuard

    public init(store: ManagerStore, registration: RegistrationGuard, logger: Logger) {
        self.store = store
        self.registration = registration
        self.logger = logger
    }

    // MARK: - Schedulers

    public func updateScheduler(_ request: Manager_V2_UpdateSchedulerRequest, context: RPCServerContext) async throws -> Manager_V2_Scheduler {
        try registration.authorize(context, "a scheduler")
        var input = SchedulerInput()
        input.hostname = request.hostname
        input.ip = request.ip
        input.port = request.port
        input.idc = request.idc
        input.location = request.location
        input.features = request.features
        input.scheduler_cluster_id = request.schedulerClusterId
        let record = try await mapErrors { try await store.upsertScheduler(input) }
        return try await message(record, withCluster: true)
    }

    public func getScheduler(_ request: Manager_V2_GetSchedulerRequest, context: RPCServerContext) async throws -> Manager_V2_Scheduler {
        guard let record = try await mapErrors({
            try await store.scheduler(hostname: request.hostname, ip: request.ip, clusterID: request.schedulerClusterId)
        }) else {
            throw RPCError(code: .notFound, message: "scheduler \(request.hostname)/\(request.ip) not found in cluster \(request.schedulerClusterId)")
        }
        return try await message(record, withCluster: true)
    }

    /// The active schedulers of the cluster that best matches the asking host (or of the
    /// cluster it names), each with its cluster and the active seed peers serving it.
    public func listSchedulers(_ request: Manager_V2_ListSchedulersRequest, context: RPCServerContext) async throws -> Manager_V2_ListSchedulersResponse {
        let clusterID: UInt64?
        if request.schedulerClusterId != 0 {
            clusterID = request.schedulerClusterId
        } else {
            var candidates: [(cluster: SchedulerCluster, activeSchedulers: Int)] = []
            for cluster in try await mapErrors({ try await store.allSchedulerClusters() }) {
                candidates.append((cluster, try await store.activeSchedulers(clusterID: cluster.id).count))
            }
            let host = ClusterSearcher.Host(ip: request.ip, hostname: request.hostname, idc: request.idc, location: request.location)
            clusterID = ClusterSearcher.rank(candidates, for: host).first?.id
        }
        var response = Manager_V2_ListSchedulersResponse()
        guard let clusterID else { return response }
        for record in try await mapErrors({ try await store.activeSchedulers(clusterID: clusterID) }) {
            response.schedulers.append(try await message(record, withCluster: true))
        }
        return response
    }

    // MARK: - Seed peers

    public func updateSeedPeer(_ request: Manager_V2_UpdateSeedPeerRequest, context: RPCServerContext) async throws -> Manager_V2_SeedPeer {
        try registration.authorize(context, "a seed peer")
        var input = SeedPeerInput()
        input.hostname = request.hostname
        input.type = request.type.isEmpty ? nil : request.type
        input.ip = request.ip
        input.port = request.port
        input.download_port = request.downloadPort
        input.idc = request.idc
        input.location = request.location
        input.seed_peer_cluster_id = request.seedPeerClusterId
        let record = try await mapErrors { try await store.upsertSeedPeer(input) }
        return try await message(record)
    }

    public func getSeedPeer(_ request: Manager_V2_GetSeedPeerRequest, context: RPCServerContext) async throws -> Manager_V2_SeedPeer {
        guard let record = try await mapErrors({
            try await store.seedPeer(hostname: request.hostname, ip: request.ip, clusterID: request.seedPeerClusterId)
        }) else {
            throw RPCError(code: .notFound, message: "seed peer \(request.hostname)/\(request.ip) not found in cluster \(request.seedPeerClusterId)")
        }
        return try await message(record)
    }

    public func listSeedPeers(_ request: Manager_V2_ListSeedPeersRequest, context: RPCServerContext) async throws -> Manager_V2_ListSeedPeersResponse {
        var response = Manager_V2_ListSeedPeersResponse()
        let (records, _) = try await mapErrors { try await store.seedPeers(page: 1, perPage: 1000, state: "active") }
        for record in records { response.seedPeers.append(try await message(record)) }
        return response
    }

    public func deleteSeedPeer(_ request: Manager_V2_DeleteSeedPeerRequest, context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        try registration.authorize(context, "a seed peer")
        guard let record = try await mapErrors({
            try await store.seedPeer(hostname: request.hostname, ip: request.ip, clusterID: request.seedPeerClusterId)
        }) else {
            throw RPCError(code: .notFound, message: "seed peer \(request.hostname)/\(request.ip) not found in cluster \(request.seedPeerClusterId)")
        }
        try await mapErrors { try await store.deleteSeedPeer(record.id) }
        return Google_Protobuf_Empty()
    }

    // MARK: - Applications and keep-alive

    public func listApplications(_ request: Manager_V2_ListApplicationsRequest, context: RPCServerContext) async throws -> Manager_V2_ListApplicationsResponse {
        var response = Manager_V2_ListApplicationsResponse()
        for app in try await mapErrors({ try await store.applications() }) {
            var m = Manager_V2_Application()
            m.id = app.id
            m.name = app.name
            m.url = app.url
            m.bio = app.bio
            response.applications.append(m)
        }
        // Dragonfly answers NOT_FOUND when there are none, and clients expect that.
        guard !response.applications.isEmpty else { throw RPCError(code: .notFound, message: "application not found") }
        return response
    }

    /// A scheduler or seed peer is active while this stream lives; when it ends, however it
    /// ends, the instance becomes inactive.
    public func keepAlive(_ requests: RPCStream<Manager_V2_KeepAliveRequest>, context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        // Before the first message: keeping an instance alive is what sends dfdaemons to it.
        try registration.authorize(context, "a keep-alive")
        var last: (InstanceKind, String, String, UInt64)?
        defer {
            if let (kind, hostname, ip, cluster) = last {
                let store = self.store
                let logger = self.logger
                // Runs even when the call was cancelled: the instance must not stay active.
                Task.detached {
                    _ = try? await store.setState(kind, hostname: hostname, ip: ip, clusterID: cluster, active: false)
                    logger.info("keep-alive from \(hostname) (\(ip)) ended: inactive")
                }
            }
        }
        for try await request in requests {
            let kind: InstanceKind
            switch request.sourceType {
            case .schedulerSource: kind = .scheduler
            case .seedPeerSource: kind = .seedPeer
            default: throw RPCError(code: .invalidArgument, message: "keep-alive source type \(request.sourceType) is not a scheduler or seed peer")
            }
            let known = try await mapErrors {
                try await store.setState(kind, hostname: request.hostname, ip: request.ip, clusterID: request.clusterId, active: true)
            }
            guard known else {
                throw RPCError(code: .notFound, message: "\(request.hostname) (\(request.ip)) in cluster \(request.clusterId) is not registered; call Update first")
            }
            if last == nil { logger.info("keep-alive from \(request.hostname) (\(request.ip)): active") }
            last = (kind, request.hostname, request.ip, request.clusterId)
        }
        return Google_Protobuf_Empty()
    }

    // MARK: - Conversions

    func message(_ r: SchedulerRecord, withCluster: Bool) async throws -> Manager_V2_Scheduler {
        var m = Manager_V2_Scheduler()
        m.id = r.id
        m.hostname = r.hostname
        m.idc = r.idc
        m.location = r.location
        m.ip = r.ip
        m.port = r.port
        m.state = r.state
        m.schedulerClusterId = r.scheduler_cluster_id
        m.features = Array((try? JSONEncoder().encode(r.features)) ?? Data())
        if withCluster, let cluster = try? await store.schedulerCluster(r.scheduler_cluster_id) {
            var c = Manager_V2_SchedulerCluster()
            c.id = cluster.id
            c.name = cluster.name
            c.bio = cluster.bio
            c.config = Array(cluster.config.text.utf8)
            c.clientConfig = Array(cluster.client_config.text.utf8)
            c.scopes = Array((try? JSONCoding.encoder.encode(cluster.scopes)) ?? Data())
            m.schedulerCluster = c
            for seed in (try? await store.activeSeedPeers(schedulerClusterID: cluster.id)) ?? [] {
                m.seedPeers.append(try await message(seed))
            }
        }
        return m
    }

    func message(_ r: SeedPeerRecord) async throws -> Manager_V2_SeedPeer {
        var m = Manager_V2_SeedPeer()
        m.id = r.id
        m.hostname = r.hostname
        m.type = r.type
        m.idc = r.idc
        m.location = r.location
        m.ip = r.ip
        m.port = r.port
        m.downloadPort = r.download_port
        m.state = r.state
        m.seedPeerClusterId = r.seed_peer_cluster_id
        if let cluster = try? await store.seedPeerCluster(r.seed_peer_cluster_id) {
            var c = Manager_V2_SeedPeerCluster()
            c.id = cluster.id
            c.name = cluster.name
            c.bio = cluster.bio
            c.config = Array(cluster.config.text.utf8)
            m.seedPeerCluster = c
        }
        return m
    }
}

/// Store failures as gRPC statuses.
func mapErrors<T: Sendable>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ManagerError {
        switch error.kind {
        case .notFound: throw RPCError(code: .notFound, message: error.message)
        case .conflict: throw RPCError(code: .alreadyExists, message: error.message)
        case .invalid: throw RPCError(code: .invalidArgument, message: error.message)
        case .unauthorized: throw RPCError(code: .unauthenticated, message: error.message)
        case .forbidden: throw RPCError(code: .permissionDenied, message: error.message)
        case .tooManyRequests: throw RPCError(code: .resourceExhausted, message: error.message)
        }
    } catch let error as RPCError {
        throw error
    } catch {
        throw RPCError(code: .internal, message: "\(error)")
    }
}
