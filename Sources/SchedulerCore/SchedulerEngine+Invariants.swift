/// Consistency checks of the upload bookkeeping, for unit tests and the fuzz target: after
/// any sequence of requests, however hostile, these must hold.
extension SchedulerEngine {
    /// Descriptions of what is inconsistent; empty when all is well.
    public func bookkeepingProblems() -> [String] {
        var problems: [String] = []
        var claimsPerHost: [String: Int] = [:]
        for child in peers.values {
            let parents = tasks[child.taskID]?.dag.parents[child.id] ?? []
            for parentID in child.parentClaims.keys {
                if !parents.contains(parentID) { problems.append("\(child.id) holds a claim on \(parentID) without an edge") }
                guard let parent = peers[parentID] else {
                    problems.append("\(child.id) holds a claim on the unknown peer \(parentID)")
                    continue
                }
                claimsPerHost[parent.hostID, default: 0] += 1
            }
        }
        for host in hosts.values {
            let claims = claimsPerHost[host.id] ?? 0
            if host.concurrentUploadCount != claims {
                problems.append("host \(host.id) counts \(host.concurrentUploadCount) uploads for \(claims) edges")
            }
            if host.concurrentUploadPieceCount < 0 { problems.append("host \(host.id) has a negative piece count") }
            // Saturating adds and floored subtractions never leave more than the true sum,
            // so a host with nothing claimed must be back at zero.
            if claims == 0 && (host.txBandwidth != 0 || host.uploadContentLength != 0 || host.concurrentUploadPieceCount != 0) {
                problems.append("host \(host.id) has no edges but load \(host.txBandwidth) b/s, \(host.concurrentUploadPieceCount) pieces, \(host.uploadContentLength) bytes")
            }
        }
        return problems
    }

    /// A host's upload bookkeeping, as the evaluator reads it.
    func hostLoad(_ id: String) -> (uploads: Int, txBandwidth: UInt64, pieceCount: Int, contentLength: UInt64)? {
        guard let h = hosts[id] else { return nil }
        return (h.concurrentUploadCount, h.txBandwidth, h.concurrentUploadPieceCount, h.uploadContentLength)
    }
}
