import Foundation

/// What the evaluator needs to know about a candidate parent.
struct ParentFacts {
    var hostType: HostType
    var state: PeerState
    var idc: String
    var location: String
    var maxTxBandwidth: UInt64
    var txBandwidth: UInt64
    var uploadContentLength: UInt64
    var concurrentUploadPieceCount: Int
}

/// Dragonfly's default evaluator: 0.6 load quality + 0.2 IDC + 0.1 location + 0.1 host type,
/// where load quality is 0.5 peak bandwidth + 0.3 bandwidth over a minute + 0.2 concurrency.
enum Evaluator {
    static let maxLocationElements = 5
    /// The piece size the concurrency term assumes (16 MiB), in bits.
    static let assumedPieceBits: UInt64 = 16 * 1024 * 1024 * 8

    static func score(parent p: ParentFacts, childIDC: String, childLocation: String) -> Double {
        0.6 * loadQuality(p) + 0.2 * idcAffinity(p.idc, childIDC) + 0.1 * locationAffinity(p.location, childLocation)
            + 0.1 * hostTypeScore(p)
    }

    static func loadQuality(_ p: ParentFacts) -> Double {
        0.5 * peakBandwidth(p) + 0.3 * bandwidthDuration(p) + 0.2 * concurrency(p)
    }

    static func peakBandwidth(_ p: ParentFacts) -> Double {
        guard p.maxTxBandwidth > 0, p.txBandwidth < p.maxTxBandwidth else { return 0 }
        return 1 - Double(p.txBandwidth) / Double(p.maxTxBandwidth)
    }

    /// How long the promised uploads would keep the link busy, against a one-minute budget.
    static func bandwidthDuration(_ p: ParentFacts) -> Double {
        guard p.maxTxBandwidth > 0 else { return 0 }
        guard p.uploadContentLength > 0 else { return 1 }
        let ratio = Double(p.uploadContentLength) * 8 / Double(p.maxTxBandwidth) / 60
        return ratio >= 1 ? 0 : 1 - ratio
    }

    static func concurrency(_ p: ParentFacts) -> Double {
        guard p.maxTxBandwidth > 0 else { return 0 }
        let needed = Double(p.maxTxBandwidth) / Double(assumedPieceBits)
        guard needed > 1 else { return 0 }
        guard p.concurrentUploadPieceCount > 0 else { return 1 }
        let ratio = Double(p.concurrentUploadPieceCount) / needed
        return ratio <= 1 ? 1 : 1 / ratio
    }

    static func idcAffinity(_ a: String, _ b: String) -> Double {
        guard !a.isEmpty, !b.isEmpty else { return 0 }
        return a.caseInsensitiveCompare(b) == .orderedSame ? 1 : 0
    }

    /// Locations are `|`-separated from the widest area down ("country|city|zone"); the
    /// score is the length of the common prefix out of five elements.
    static func locationAffinity(_ a: String, _ b: String) -> Double {
        guard !a.isEmpty, !b.isEmpty else { return 0 }
        if a.caseInsensitiveCompare(b) == .orderedSame { return 1 }
        let x = a.split(separator: "|", omittingEmptySubsequences: false)
        let y = b.split(separator: "|", omittingEmptySubsequences: false)
        let n = min(x.count, y.count, maxLocationElements)
        var matches = 0
        while matches < n, x[matches].caseInsensitiveCompare(y[matches]) == .orderedSame { matches += 1 }
        return Double(matches) / Double(maxLocationElements)
    }

    /// Seeds are best while they are still fetching (their pieces are fresh); a normal host
    /// sits in the middle.
    static func hostTypeScore(_ p: ParentFacts) -> Double {
        if p.hostType.isSeed { return p.state == .receivedNormal || p.state == .running ? 1 : 0 }
        return 0.5
    }

    /// A parent is bad when it is not downloading or done, or its latest piece took far
    /// longer than its earlier ones (20x the mean with few samples, mean + 3 sigma with many).
    static func isBadParent(state: PeerState, costs: [Double], normalDistributionLength: Int = 30) -> Bool {
        guard state == .running || state == .backToSource || state == .succeeded else { return true }
        guard costs.count >= 2, let last = costs.last else { return false }
        let earlier = costs.dropLast()
        let mean = earlier.reduce(0, +) / Double(earlier.count)
        if costs.count < normalDistributionLength { return last > 20 * mean }
        let variance = earlier.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(earlier.count)
        return last > mean + 3 * variance.squareRoot()
    }
}
