import Foundation
import ManagerCore
import Preheating

/// A running job's result: how many of its downloads finished and failed so far, and (for
/// jobs of at most `maxListed` downloads) each download's state: PENDING, RUNNING, SUCCESS
/// or FAILURE. Written at most twice a second, so a large preheat is not a database write
/// per download; a count held back is written when its half second is up.
actor JobProgress {
    struct Download: Sendable {
        var url: String
        var peer: String
        var hostname: String
        var state: String
    }

    let store: ManagerStore
    let jobID: UInt64
    var total = 0
    var done = 0
    var failed = 0
    var downloads: [Download] = []
    /// Index into `downloads` by url and peer.
    var index: [String: Int] = [:]
    var lastWrite = ContinuousClock.now - .seconds(1)
    var trailing: Task<Void, Never>?
    /// Set before the job's final result is written: nothing after may overwrite it.
    var closed = false
    static let interval: Duration = .milliseconds(500)
    static let maxListed = 1_000

    init(store: ManagerStore, jobID: UInt64) {
        self.store = store
        self.jobID = jobID
    }

    func start(work: [Download]) async {
        total = work.count
        downloads = work.count <= Self.maxListed ? work : []
        index = [:]
        for (i, d) in downloads.enumerated() { index[d.url + " " + d.peer] = i }
        await write()
    }

    /// Sets the state of the named downloads (by url and peer address).
    func mark(_ keys: [(url: String, peer: String)], _ state: String) {
        for key in keys {
            if let i = index[key.url + " " + key.peer] { downloads[i].state = state }
        }
    }

    /// Counts as a survey found them; never backwards.
    func set(done: Int, failed: Int) async {
        guard done > self.done || failed > self.failed else { return }
        self.done = max(self.done, done)
        self.failed = max(self.failed, failed)
        await write()
    }

    func record(_ outcome: PreheatExecutor.Outcome) async {
        done += 1
        if outcome.state != "SUCCESS" { failed += 1 }
        mark([(outcome.url, outcome.peer)], outcome.state)
        if ContinuousClock.now - lastWrite >= Self.interval {
            await write()
        } else if trailing == nil {
            let due = lastWrite + Self.interval
            trailing = Task {
                try? await Task.sleep(until: due)
                await self.writeTrailing()
            }
        }
    }

    func close() {
        closed = true
        trailing?.cancel()
        trailing = nil
    }

    private func writeTrailing() async {
        trailing = nil
        await write()
    }

    private func write() async {
        guard !closed else { return }
        lastWrite = ContinuousClock.now
        var progress: [String: JSONValue] = ["total": .number(Double(total)), "done": .number(Double(done)),
                                             "failed": .number(Double(failed))]
        if !downloads.isEmpty {
            progress["tasks"] = .array(downloads.map { d in
                .object(["url": .string(d.url), "peer": .string(d.peer), "hostname": .string(d.hostname), "state": .string(d.state)])
            })
        }
        _ = try? await store.updateJob(jobID, state: .running, result: .object(["progress": .object(progress)]))
    }
}
