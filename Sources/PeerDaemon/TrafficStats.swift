import Foundation
import Locking

/// Where this node's bytes came from, in total and per task, kept in `stats.json` under the
/// data directory (the seed's lab reads it to measure P2P efficiency): `peer` (from other
/// peers), `origin` (back to source) and `cache` (served to local clients from pieces
/// already stored). The first two match `download_traffic_total`'s `peer` and
/// `back_to_source` series. Totals survive restarts: the file is read at start.
public final class TrafficStats: Sendable {
    public struct Bytes: Codable, Equatable, Sendable {
        public var peer: UInt64 = 0
        public var origin: UInt64 = 0
        public var cache: UInt64 = 0

        /// The share of downloaded bytes that came from peers (cache hits aside).
        public var peerRatio: Double {
            let downloaded = Double(peer) + Double(origin)
            return downloaded > 0 ? Double(peer) / downloaded : 0
        }

        mutating func add(_ source: Source, _ count: UInt64) {
            switch source {
            case .peer: peer = peer.addingReportingOverflow(count).overflow ? .max : peer + count
            case .origin: origin = origin.addingReportingOverflow(count).overflow ? .max : origin + count
            case .cache: cache = cache.addingReportingOverflow(count).overflow ? .max : cache + count
            }
        }
    }

    public enum Source: Sendable { case peer, origin, cache }

    struct File: Codable, Equatable {
        var total = Bytes()
        var tasks: [String: Bytes] = [:]
        var updatedAt = Date()
    }

    /// Tasks beyond this many are dropped from the file, least recently counted first;
    /// the totals still include them.
    static let maxTasks = 1000

    private struct State {
        var file = File()
        var order: [String] = []
        var dirty = false
    }

    public let path: URL
    private let state: Locked<State>

    public init(directory: URL) {
        path = directory.appendingPathComponent("stats.json")
        var initial = State()
        if let data = try? Data(contentsOf: path), let file = try? Self.decoder.decode(File.self, from: data) {
            initial.file = file
            initial.order = file.tasks.keys.sorted()
        }
        state = Locked(initial)
    }

    func record(_ source: Source, bytes: Int, task: String) {
        let count = UInt64(clamping: bytes)
        state.withLock { s in
            s.file.total.add(source, count)
            if s.file.tasks[task] == nil {
                s.order.append(task)
                if s.order.count > Self.maxTasks { s.file.tasks.removeValue(forKey: s.order.removeFirst()) }
            }
            s.file.tasks[task, default: Bytes()].add(source, count)
            s.dirty = true
        }
    }

    public var total: Bytes { state.withLock { $0.file.total } }

    /// Writes the file if anything changed since the last write: to a temporary file first,
    /// then renamed, so a reader never sees half of it.
    public func save() {
        let snapshot: File? = state.withLock { s in
            guard s.dirty else { return nil }
            s.dirty = false
            s.file.updatedAt = Date()
            return s.file
        }
        guard let snapshot, let data = try? Self.encoder.encode(snapshot) else { return }
        let temporary = path.deletingLastPathComponent().appendingPathComponent(".stats.json.\(UInt32.random(in: 0...UInt32.max))")
        do {
            try data.write(to: temporary)
            guard rename(temporary.path, path.path) == 0 else { throw CocoaError(.fileWriteUnknown) }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            state.withLock { $0.dirty = true }
        }
    }

    /// Saves every `interval` until cancelled, and once more at the end.
    public func run(every interval: Duration = .seconds(5)) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            save()
        }
        save()
    }

    private static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601
        return e
    }()

    private static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()
}
