import GeneratedAPI
import Logging
import RPCCore
import RPCTransport

/// Registers the scheduler with the manager (`UpdateScheduler`) and keeps it marked alive
/// (`KeepAlive`). Runs until cancelled; a missing or failing manager only delays it, it
/// never stops scheduling.
public struct ManagerAnnouncer: Sendable {
    public struct Identity: Sendable {
        public var hostname: String
        public var ip: String
        public var port: Int32
        public var idc: String?
        public var location: String?
        public var clusterID: UInt64
        public init(hostname: String, ip: String, port: Int32, idc: String?, location: String?, clusterID: UInt64) {
            self.hostname = hostname
            self.ip = ip
            self.port = port
            self.idc = idc
            self.location = location
            self.clusterID = clusterID
        }
    }

    let address: String
    let identity: Identity
    let interval: Duration
    let logger: Logger

    public init(address: String, identity: Identity, interval: Duration, logger: Logger = Logger(label: "scheduler.manager")) {
        self.address = address
        self.identity = identity
        self.interval = interval
        self.logger = logger
    }

    public func run() async {
        guard let channel = try? RPCChannel(address: address) else {
            logger.error("manager address \(address) is not host:port")
            return
        }
        defer { Task { await channel.close() } }
        let client = Manager_V2_ManagerClient(RPCClient(transport: channel))
        while !Task.isCancelled {
            do {
                var update = Manager_V2_UpdateSchedulerRequest()
                update.sourceType = .schedulerSource
                update.hostname = identity.hostname
                update.ip = identity.ip
                update.port = identity.port
                update.idc = identity.idc
                update.location = identity.location
                update.schedulerClusterId = identity.clusterID
                _ = try await client.updateScheduler(update, options: CallOptions(timeout: .seconds(10)))
                logger.info("registered with manager \(address) in cluster \(identity.clusterID)")
                let call = try await client.keepAlive()
                while !Task.isCancelled {
                    var ping = Manager_V2_KeepAliveRequest()
                    ping.sourceType = .schedulerSource
                    ping.hostname = identity.hostname
                    ping.ip = identity.ip
                    ping.clusterId = identity.clusterID
                    try await call.send(ping)
                    try await Task.sleep(for: interval)
                }
                call.cancel()
            } catch {
                if Task.isCancelled { return }
                logger.warning("manager \(address) unavailable (\(error)); scheduling continues, retrying in \(interval)")
                try? await Task.sleep(for: interval)
            }
        }
    }
}
