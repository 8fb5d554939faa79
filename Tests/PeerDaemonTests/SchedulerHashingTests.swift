import Foundation
import PeerDaemon
import Testing

@Suite struct SchedulerHashingTests {
    let tasks = (0..<2000).map { "task-\($0)" }

    func assignment(_ schedulers: [String]) -> [String: String] {
        Dictionary(uniqueKeysWithValues: tasks.map { ($0, Daemon.scheduler(for: $0, among: schedulers) ?? "") })
    }

    @Test func addingASchedulerMovesOnlyTheTasksItTakes() {
        let before = assignment(["10.0.0.1:65002", "10.0.0.2:65002", "10.0.0.3:65002"])
        let after = assignment(["10.0.0.1:65002", "10.0.0.2:65002", "10.0.0.3:65002", "10.0.0.4:65002"])
        let moved = tasks.filter { before[$0] != after[$0] }
        #expect(moved.allSatisfy { after[$0] == "10.0.0.4:65002" }, "every moved task went to the newcomer")
        // About a quarter should move; far from all of them (which modulo hashing would do).
        #expect(moved.count > tasks.count / 8 && moved.count < tasks.count * 3 / 8, "\(moved.count) of \(tasks.count) moved")
    }

    @Test func removingASchedulerMovesOnlyItsTasks() {
        let before = assignment(["a:1", "b:1", "c:1"])
        let after = assignment(["a:1", "c:1"])
        #expect(tasks.filter { before[$0] != after[$0] }.allSatisfy { before[$0] == "b:1" })
    }

    @Test func everyPeerAgreesWhateverTheOrder() {
        #expect(assignment(["a:1", "b:1", "c:1"]) == assignment(["c:1", "a:1", "b:1"]))
        #expect(Daemon.scheduler(for: "t", among: []) == nil)
    }
}
