import NIOCore
import NIOPosix

/// Waits for `condition`, checking every 20 ms, for at most `limit`.
func eventually(within limit: Duration, _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}

/// Whether a TCP connect to the loopback `port` is refused now: a server that began its
/// shutdown has closed its listener.
func connectionRefused(port: Int) async -> Bool {
    do {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(2))
            .connect(host: "127.0.0.1", port: port).get()
        try? await channel.close()
        return false
    } catch {
        return true
    }
}
