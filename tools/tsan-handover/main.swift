// Does this toolchain's ThreadSanitizer see the ordering a continuation's resume gives?
//
// A value is made on a plain thread and reaches a task only through `resume(returning:)`:
// a correct program. When the resume wins the race with the task's own suspension, the
// Swift runtime passes the value through an atomic in its (uninstrumented) library, which
// ThreadSanitizer cannot see, and it reports a data race that is not one. swift-nio's
// NIOAsyncChannel hands request heads and buffers to our tasks the same way, so reports
// there are of this kind. tools/sanitizers.sh runs this first and prints the verdict.
import Foundation

final class Payload: @unchecked Sendable {
    var values: [Int]
    init(_ n: Int) { values = Array(repeating: n, count: 16) }
}

func handOver(_ i: Int) async -> Int {
    let payload: Payload = await withCheckedContinuation { (c: CheckedContinuation<Payload, Never>) in
        Thread {
            let p = Payload(i)
            p.values[0] = i + 1
            c.resume(returning: p)
        }.start()
    }
    return payload.values[0]
}

let done = DispatchSemaphore(value: 0)
Task {
    var total = 0
    for i in 0..<500 { total += await handOver(i) }
    precondition(total == (1...500).reduce(0, +), "the values arrived wrong")
    done.signal()
}
done.wait()
