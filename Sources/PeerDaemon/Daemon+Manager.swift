import GeneratedAPI
import RPCCore

extension Daemon {
    /// With a manager and no fixed schedulers: asks the manager (`ListSchedulers`) which
    /// schedulers serve this host, now and every `interval`, until cancelled. A manager
    /// that is down leaves the last answer in place (or none: every download goes to the
    /// origin until it answers).
    public func followManager(_ address: String, interval: Duration) async {
        while !Task.isCancelled {
            do {
                let client = Manager_V2_ManagerClient(RPCClient(transport: try channel(address)))
                var request = Manager_V2_ListSchedulersRequest()
                request.sourceType = config.seedPeer ? .seedPeerSource : .peerSource
                request.hostname = config.hostname
                request.ip = config.ip
                request.idc = config.idc.isEmpty ? nil : config.idc
                request.location = config.location.isEmpty ? nil : config.location
                let answer = try await client.listSchedulers(request, options: CallOptions(timeout: .seconds(10)))
                let found = answer.schedulers.map { s in s.ip.contains(":") ? "[\(s.ip)]:\(s.port)" : "\(s.ip):\(s.port)" }.sorted()
                let changed = schedulerList.withLock { list in
                    defer { list = found }
                    return list != found
                }
                if changed {
                    logger.info("manager \(address) names schedulers \(found)")
                    await announceHostOnce()  // so they can send peers here at once
                }
            } catch {
                logger.warning("manager \(address) did not answer ListSchedulers: \(error)")
            }
            try? await Task.sleep(for: interval)
        }
    }
}
