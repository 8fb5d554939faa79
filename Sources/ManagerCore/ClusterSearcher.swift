import DragonflyCommon
import Foundation

/// Picks the scheduler cluster for a host as Dragonfly's manager searcher does: only
/// clusters with active schedulers count; each is scored 0.3 CIDR + 0.3 hostname regex +
/// 0.25 IDC + 0.14 location + 0.01 default cluster, highest first.
public enum ClusterSearcher {
    public struct Host: Sendable {
        public var ip: String
        public var hostname: String
        public var idc: String?
        public var location: String?
        public init(ip: String, hostname: String, idc: String?, location: String?) {
            self.ip = ip
            self.hostname = hostname
            self.idc = idc
            self.location = location
        }
    }

    static let maxLocationElements = 5

    /// Clusters with at least one active scheduler, best match first; ties keep id order.
    public static func rank(_ clusters: [(cluster: SchedulerCluster, activeSchedulers: Int)], for host: Host) -> [SchedulerCluster] {
        let candidates: [SchedulerCluster] = clusters.filter { $0.activeSchedulers > 0 }.map(\.cluster)
        let scored: [(cluster: SchedulerCluster, score: Double, order: Int)] = candidates.enumerated().map { i, c in
            (c, score(c, host), i)
        }
        let sorted = scored.sorted { a, b in a.score != b.score ? a.score > b.score : a.order < b.order }
        return sorted.map(\.cluster)
    }

    public static func score(_ cluster: SchedulerCluster, _ host: Host) -> Double {
        let scopes = cluster.scopes
        let cidr: Double = cidrScore(host.ip, scopes.cidrs ?? [])
        let hostname: Double = hostnameScore(host.hostname, scopes.hostnames ?? [])
        let idc: Double = idcScore(host.idc ?? "", scopes.idc ?? "")
        let location: Double = locationScore(host.location ?? "", scopes.location ?? "")
        let isDefault: Double = cluster.is_default ? 1 : 0
        return 0.3 * cidr + 0.3 * hostname + 0.25 * idc + 0.14 * location + 0.01 * isDefault
    }

    static func cidrScore(_ ip: String, _ cidrs: [String]) -> Double {
        cidrs.contains { CIDR($0)?.contains(ip) == true } ? 1 : 0
    }

    static func hostnameScore(_ hostname: String, _ patterns: [String]) -> Double {
        guard !hostname.isEmpty else { return 0 }
        return patterns.contains { (try? PatternRegex($0))?.matches(hostname) == true } ? 1 : 0
    }

    /// The scope may list several IDCs separated by `|`.
    static func idcScore(_ idc: String, _ scope: String) -> Double {
        guard !idc.isEmpty, !scope.isEmpty else { return 0 }
        return scope.split(separator: "|").contains { $0.caseInsensitiveCompare(idc) == .orderedSame }
            || scope.caseInsensitiveCompare(idc) == .orderedSame ? 1 : 0
    }

    /// Locations are `|`-separated from the widest area down; the score is the common
    /// prefix length out of five.
    static func locationScore(_ location: String, _ scope: String) -> Double {
        guard !location.isEmpty, !scope.isEmpty else { return 0 }
        if location.caseInsensitiveCompare(scope) == .orderedSame { return 1 }
        let a = location.split(separator: "|", omittingEmptySubsequences: false)
        let b = scope.split(separator: "|", omittingEmptySubsequences: false)
        var n = 0
        for i in 0..<min(a.count, b.count, maxLocationElements) {
            guard a[i].caseInsensitiveCompare(b[i]) == .orderedSame else { break }
            n += 1
        }
        return Double(n) / Double(maxLocationElements)
    }
}
