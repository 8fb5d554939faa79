import Foundation
import GeneratedAPI
import Logging
import RPCCore
import RPCTransport

/// Registers a scheduler or a seed peer with the manager (`UpdateScheduler` /
/// `UpdateSeedPeer`) and keeps it marked alive (`KeepAlive`). Runs until cancelled; a
/// missing or failing manager only delays it, it never stops the service.
public struct ManagerAnnouncer: Sendable {
    public enum Role: Sendable {
        case scheduler(port: Int32)
        case seedPeer(type: String, port: Int32, downloadPort: Int32)
    }

    public struct Identity: Sendable {
        public var hostname: String
        public var ip: String
        public var idc: String?
        public var location: String?
        public var clusterID: UInt64
        public var role: Role
        public init(hostname: String, ip: String, idc: String?, location: String?, clusterID: UInt64, role: Role) {
            self.hostname = hostname
            self.ip = ip
            self.idc = idc
            self.location = location
            self.clusterID = clusterID
            self.role = role
        }
    }

    let address: String
    let identity: Identity
    let interval: Duration
    let logger: Logger

    let tls: TLSConfiguration?
    /// Sent with registration and keep-alive; the manager refuses both without it unless
    /// it verifies our client certificate instead.
    let registrationSecret: String?

    /// The metadata key and environment variable the manager's RegistrationGuard reads;
    /// spelled again here because this client does not link the manager.
    public static let registrationSecretKey = "x-dragonfly-registration-secret"
    public static let registrationSecretVariable = "DRAGONFLY_REGISTRATION_SECRET"

    /// `registrationSecret` nil falls back to `$DRAGONFLY_REGISTRATION_SECRET`, so a secret
    /// can be given to a container without appearing in its command line.
    public init(address: String, identity: Identity, interval: Duration, tls: TLSConfiguration? = nil,
                registrationSecret: String? = nil, logger: Logger = Logger(label: "manager.announcer")) {
        self.address = address
        self.identity = identity
        self.interval = interval
        self.tls = tls
        let secret = registrationSecret ?? ProcessInfo.processInfo.environment[Self.registrationSecretVariable]
        self.registrationSecret = secret?.isEmpty == false ? secret : nil
        self.logger = logger
    }

    var metadata: Metadata {
        var m = Metadata()
        if let registrationSecret { m.add(Self.registrationSecretKey, registrationSecret) }
        return m
    }

    public func run() async {
        guard let channel = try? RPCChannel(configuration: RPCClientConfiguration.parse(address, tls: tls)) else {
            logger.error("manager address \(address) is not host:port")
            return
        }
        await keepRegistered(Manager_V2_ManagerClient(RPCClient(transport: channel)))
        // Closed here, not left to a detached task: the manager then sees the keep-alive
        // end with this process, instead of waiting out its own shutdown grace for it.
        await channel.close()
    }

    private func keepRegistered(_ client: Manager_V2_ManagerClient) async {
        while !Task.isCancelled {
            do {
                try await register(client)
                logger.info("registered with manager \(address) in cluster \(identity.clusterID)")
                let call = try await client.keepAlive(options: CallOptions(metadata: metadata))
                defer { call.cancel() }
                while !Task.isCancelled {
                    var ping = Manager_V2_KeepAliveRequest()
                    ping.sourceType = sourceType
                    ping.hostname = identity.hostname
                    ping.ip = identity.ip
                    ping.clusterId = identity.clusterID
                    try await call.send(ping)
                    try await Task.sleep(for: interval)
                }
            } catch {
                if Task.isCancelled { return }
                if let refused = error as? RPCError, refused.code == .permissionDenied || refused.code == .unauthenticated {
                    // Not an outage: retrying will not help until someone fixes the secret.
                    logger.error("manager \(address) refused registration: \(refused.message); retrying in \(interval)")
                    try? await Task.sleep(for: interval)
                    continue
                }
                logger.warning("manager \(address) unavailable (\(error)); carrying on, retrying in \(interval)")
                try? await Task.sleep(for: interval)
            }
        }
    }

    var sourceType: Manager_V2_SourceType {
        if case .scheduler = identity.role { return .schedulerSource }
        return .seedPeerSource
    }

    private func register(_ client: Manager_V2_ManagerClient) async throws {
        let options = CallOptions(timeout: .seconds(10), metadata: metadata)
        switch identity.role {
        case .scheduler(let port):
            var update = Manager_V2_UpdateSchedulerRequest()
            update.sourceType = .schedulerSource
            update.hostname = identity.hostname
            update.ip = identity.ip
            update.port = port
            update.idc = identity.idc
            update.location = identity.location
            update.schedulerClusterId = identity.clusterID
            _ = try await client.updateScheduler(update, options: options)
        case .seedPeer(let type, let port, let downloadPort):
            var update = Manager_V2_UpdateSeedPeerRequest()
            update.sourceType = .seedPeerSource
            update.hostname = identity.hostname
            update.type = type
            update.ip = identity.ip
            update.port = port
            update.downloadPort = downloadPort
            update.idc = identity.idc
            update.location = identity.location
            update.seedPeerClusterId = identity.clusterID
            _ = try await client.updateSeedPeer(update, options: options)
        }
    }
}
