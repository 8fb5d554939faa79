import Locking

/// One `RPCChannel` per address, made on first use and reused: for services that talk to
/// many peers (a dfdaemon's parents, a scheduler's seed peers).
public final class RPCChannelPool: Sendable {
    private let channels = Locked<[String: RPCChannel]>([:])
    private let configure: @Sendable (inout RPCClientConfiguration) -> Void

    public init(configure: @escaping @Sendable (inout RPCClientConfiguration) -> Void = { _ in }) {
        self.configure = configure
    }

    public func channel(_ address: String) throws -> RPCChannel {
        try channels.withLock { map in
            if let c = map[address] { return c }
            var config = try RPCClientConfiguration.parse(address)
            configure(&config)
            let c = try RPCChannel(configuration: config)
            map[address] = c
            return c
        }
    }

    public func closeAll() async {
        let all = channels.withLock { m -> [RPCChannel] in
            let v = Array(m.values)
            m.removeAll()
            return v
        }
        for c in all { await c.close() }
    }
}
