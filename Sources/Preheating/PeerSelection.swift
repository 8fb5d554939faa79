/// Which of the candidate peers a preheat reaches: only those with `ips` when given, then
/// at most `count` of them or `percentage` per cent (rounded up, at least one).
public struct PeerSelection: Sendable, Equatable {
    public var ips: [String]
    public var count: Int?
    public var percentage: Double?

    public init(ips: [String] = [], count: Int? = nil, percentage: Double? = nil) {
        self.ips = ips
        self.count = count
        self.percentage = percentage
    }

    /// The candidates for `scope` (seed peers, or every peer for `all_peers`), narrowed.
    public func choose(from hosts: [PreheatTarget], scope: PreheatPlan.Scope) -> [PreheatTarget] {
        var chosen = Array(Set(hosts.filter { scope == .allPeers || $0.isSeed })).sorted()
        if !ips.isEmpty { chosen = chosen.filter { ips.contains($0.ip) } }
        if let count { chosen = Array(chosen.prefix(max(0, count))) }
        if let percentage, percentage > 0, !chosen.isEmpty {
            let share = min(100, percentage)
            chosen = Array(chosen.prefix(max(1, Int((Double(chosen.count) * share / 100).rounded(.up)))))
        }
        return chosen
    }

    /// The same peer for the same URL every time, spread evenly over the peers
    /// (rendezvous hashing).
    public static func rendezvous(_ url: String, _ targets: [PreheatTarget]) -> PreheatTarget? {
        targets.max { hash(url + $0.address) < hash(url + $1.address) }
    }

    static func hash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return h
    }
}
