/// Garbage collection of peers, tasks and hosts, with Dragonfly's rules.
extension SchedulerEngine {
    /// One peer GC pass; returns the peers deleted. Peers are first moved to Leave and
    /// deleted on a later pass, so a child still reading from a leaving parent can finish.
    @discardableResult
    public func collectPeers() -> [String] {
        let t = now
        var deleted: [String] = []
        for peer in Array(peers.values) {
            guard let host = hosts[peer.hostID], let task = tasks[peer.taskID] else {
                removePeer(peer.id)
                deleted.append(peer.id)
                continue
            }
            if peer.state == .leave {
                removePeer(peer.id)
                deleted.append(peer.id)
                continue
            }
            let downloading = peer.state == .running || peer.state == .backToSource
            if host.info.disableShared
                || (downloading && t - peer.pieceUpdatedAt > settings.pieceDownloadTimeout)
                || t - peer.updatedAt > settings.peerTTL
                || t - host.updatedAt > settings.hostTTL
                || peer.state == .failed {
                try? fire(.leave, on: peer)
                continue
            }
            if task.dag.count > settings.peerCountLimitForTask && peer.state == .succeeded
                && task.dag.inDegree(peer.id) + task.dag.outDegree(peer.id) == 0 {
                try? fire(.leave, on: peer)
                removePeer(peer.id)
                deleted.append(peer.id)
            }
        }
        return deleted
    }

    /// Deletes tasks no peer belongs to any more.
    @discardableResult
    public func collectTasks() -> [String] {
        let empty = tasks.values.filter { $0.dag.count == 0 }.map(\.id)
        for id in empty { tasks.removeValue(forKey: id) }
        return empty
    }

    /// Deletes hosts that missed two announce intervals, after letting their peers leave.
    @discardableResult
    public func collectHosts() -> [String] {
        let t = now
        var gone: [String] = []
        for host in Array(hosts.values) {
            guard let interval = host.announceInterval, interval > .zero, t - host.updatedAt > interval * 2 else { continue }
            for id in host.peers { removePeer(id) }
            hosts.removeValue(forKey: host.id)
            gone.append(host.id)
        }
        return gone
    }

    /// Runs the three collectors at their intervals until cancelled.
    public func runGarbageCollection() async {
        var nextPeer = now + settings.peerGCInterval
        var nextTask = now + settings.taskGCInterval
        var nextHost = now + settings.hostGCInterval
        while !Task.isCancelled {
            let wake = min(nextPeer, nextTask, nextHost)
            do { try await Task.sleep(until: wake, clock: .continuous) } catch { return }
            let t = now
            if t >= nextPeer { collectPeers(); nextPeer = t + settings.peerGCInterval }
            if t >= nextTask { collectTasks(); nextTask = t + settings.taskGCInterval }
            if t >= nextHost { collectHosts(); nextHost = t + settings.hostGCInterval }
        }
    }

    /// Ages every record by `elapsed`, so tests can exercise TTLs without waiting.
    public func ageForTesting(by elapsed: Duration) {
        for p in peers.values {
            p.updatedAt = p.updatedAt - elapsed
            p.pieceUpdatedAt = p.pieceUpdatedAt - elapsed
        }
        for h in hosts.values { h.updatedAt = h.updatedAt - elapsed }
    }
}
