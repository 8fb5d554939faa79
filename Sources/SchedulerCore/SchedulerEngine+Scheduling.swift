import GeneratedAPI
import RPCCore

extension SchedulerEngine {
    /// One round of Dragonfly's ScheduleCandidateParents for `peerID`, after `attempt`
    /// rounds that found nothing.
    func scheduleAttempt(peerID: String, attempt: Int) -> SchedulingDecision {
        guard let peer = peers[peerID], let task = tasks[peer.taskID] else {
            return .fail(RPCError(code: .notFound, message: "peer \(peerID) not found"))
        }
        if task.canBackToSource {
            if peer.needBackToSource { return .backToSource("peer's NeedBackToSource is true") }
            if attempt >= settings.retryBackToSourceLimit {
                return .backToSource("scheduling exceeded RetryBackToSourceLimit")
            }
        }
        if attempt >= settings.retryLimit {
            return .fail(RPCError(code: .failedPrecondition, message: "scheduling exceeded RetryLimit"))
        }
        releaseParents(of: peer, in: task)
        let candidates = findCandidateParents(peer, task)
        guard !candidates.isEmpty else { return .retry }
        for parent in candidates where task.dag.addEdge(from: parent.id, to: peer.id) {
            claimEdge(parentHostOf: parent, child: peer, task: task)
        }
        return .parents(candidates.map { peerView($0, task: task, withPieces: false) })
    }

    /// Sample, filter, score, keep the best.
    func findCandidateParents(_ peer: PeerRecord, _ task: TaskRecord) -> [PeerRecord] {
        guard peer.state == .receivedNormal || peer.state == .running else { return [] }
        let sample = task.dag.randomVertices(settings.filterParentLimit, using: &rng)
        let childHost = hosts[peer.hostID]
        let scored: [(PeerRecord, Double)] = sample.compactMap { id in
            guard let candidate = peers[id], isUsableParent(candidate, for: peer, task) else { return nil }
            guard let host = hosts[candidate.hostID] else { return nil }
            let facts = ParentFacts(hostType: host.type, state: candidate.state, idc: host.idc, location: host.location,
                                    maxTxBandwidth: host.maxTxBandwidth, txBandwidth: host.txBandwidth,
                                    uploadContentLength: host.uploadContentLength,
                                    concurrentUploadPieceCount: host.concurrentUploadPieceCount)
            return (candidate, Evaluator.score(parent: facts, childIDC: childHost?.idc ?? "", childLocation: childHost?.location ?? ""))
        }
        // Stable on the random sample order, so equal scores spread load.
        let sorted = scored.enumerated().sorted { a, b in
            a.element.1 != b.element.1 ? a.element.1 > b.element.1 : a.offset < b.offset
        }
        return sorted.prefix(settings.candidateParentLimit).map(\.element.0)
    }

    /// Dragonfly's candidate filters, in its order.
    func isUsableParent(_ candidate: PeerRecord, for peer: PeerRecord, _ task: TaskRecord) -> Bool {
        if peer.blockParents.contains(candidate.id) { return false }
        guard let host = hosts[candidate.hostID] else { return false }
        if host.info.disableShared { return false }
        if candidate.hostID == peer.hostID { return false }
        // A peer that fetched a range holds only its pieces; children ask parents for any.
        if candidate.range != nil { return false }
        guard task.dag.contains(candidate.id) else { return false }
        // A normal peer is a useful parent only once it has a source of its own.
        if host.type == .normal && task.dag.inDegree(candidate.id) == 0
            && candidate.state != .backToSource && candidate.state != .succeeded {
            return false
        }
        if Evaluator.isBadParent(state: candidate.state, costs: candidate.pieceCosts.values) { return false }
        if host.freeUploadCount <= 0 { return false }
        return task.dag.canAddEdge(from: candidate.id, to: peer.id)
    }

    /// The peer's stream, if its AnnouncePeer call is still open.
    func stream(of peerID: String) -> PeerStream? { peers[peerID]?.stream }

    func undoParents(peerID: String) {
        guard let peer = peers[peerID], let task = tasks[peer.taskID] else { return }
        releaseParents(of: peer, in: task)
    }
}

/// The scheduling loop, outside the actor so the retry sleep and the stream send do not
/// hold it: find parents, or wait and try again, or send the peer back to source.
public struct Scheduling: Sendable {
    public let engine: SchedulerEngine
    let retryInterval: Duration

    public init(engine: SchedulerEngine, retryInterval: Duration) {
        self.engine = engine
        self.retryInterval = retryInterval
    }

    public func scheduleCandidateParents(peerID: String) async throws {
        var attempt = 0
        while true {
            try Task.checkCancellation()
            let decision = await engine.scheduleAttempt(peerID: peerID, attempt: attempt)
            switch decision {
            case .retry:
                attempt += 1
                try await Task.sleep(for: retryInterval)
            case .fail(let error):
                throw error
            case .backToSource(let description):
                var r = Scheduler_V2_AnnouncePeerResponse()
                r.response = .needBackToSourceResponse(Scheduler_V2_NeedBackToSourceResponse.with { $0.descriptionField = description })
                try await send(r, to: peerID)
                return
            case .parents(let candidates):
                var r = Scheduler_V2_AnnouncePeerResponse()
                r.response = .normalTaskResponse(Scheduler_V2_NormalTaskResponse.with { $0.candidateParents = candidates })
                do {
                    try await send(r, to: peerID)
                } catch {
                    await engine.undoParents(peerID: peerID)
                    throw error
                }
                return
            }
        }
    }

    func send(_ response: Scheduler_V2_AnnouncePeerResponse, to peerID: String) async throws {
        guard let stream = await engine.stream(of: peerID) else {
            throw RPCError(code: .failedPrecondition, message: "peer \(peerID): AnnouncePeer stream not found")
        }
        do {
            try await stream.write(response)
        } catch {
            throw RPCError(code: .failedPrecondition, message: "peer \(peerID): send failed: \(error)")
        }
    }
}
