import ManagerCore
import Testing
@testable import ManagerService

/// A preheat job's numbers come from a JSON body: doubles of any size, which must be
/// refused or bounded before they become integers (1e20 used to trap the manager).
@Suite struct PreheatArgumentsTests {
    func args(_ extra: [String: JSONValue]) -> JSONValue {
        .object(["type": .string("file"), "url": .string("https://origin.example/x")].merging(extra) { $1 })
    }

    @Test(arguments: [["piece_length": JSONValue.number(1e20)], ["piece_length": .number(4_194_304.5)],
                      ["count": .number(-1e19)], ["count": .number(0)]])
    func outOfRangeNumbersAreRefused(_ extra: [String: JSONValue]) {
        #expect(throws: ManagerError.self) { try PreheatArguments(args(extra)) }
    }

    @Test func hugeCountsAreBoundedNotTrapped() throws {
        let a = try PreheatArguments(args(["count": .number(1e19), "concurrent_task_count": .number(-1e19)]))
        #expect(a.count == 1_000_000)
        #expect(a.concurrentTaskCount == 1)
        let b = try PreheatArguments(args(["concurrent_task_count": .number(1e300), "piece_length": .number(4_194_304)]))
        #expect(b.concurrentTaskCount == 64)
        #expect(b.pieceLength == 4_194_304)
    }
}
