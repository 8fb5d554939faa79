import GeneratedAPI
import RPCCore
import RPCTransport

/// What a command works with: where types come from, and the server when one is named.
struct Session {
    var source: DescriptorSource
    let rpc: RPCClient?
    let channel: RPCChannel?
    let deadline: Deadline

    /// Checks the flags, loads schema files if any, and prepares (but does not yet open)
    /// the connection. Failures are printed; the thrown ExitCode says how to exit.
    static func open(address: String?, connection: ConnectionOptions, schema: SchemaOptions,
                     metadata: Metadata = Metadata()) throws -> Session {
        try connection.check()
        try schema.check()
        let deadline = connection.deadline()
        do {
            let files = try schema.load()
            var rpc: RPCClient?
            var channel: RPCChannel?
            if let address { (rpc, channel) = try connection.client(address: address, deadline: deadline) }
            let source: DescriptorSource
            if let files {
                source = .files(files)
            } else if let rpc {
                source = .reflection(ReflectionClient(rpc: rpc, options: { deadline.callOptions(metadata: metadata) }))
            } else {
                throw usage("give a server address (host:port or unix:PATH), or --protoset/--proto files")
            }
            return Session(source: source, rpc: rpc, channel: channel, deadline: deadline)
        } catch {
            throw fail(error)
        }
    }

    /// The positional `[ADDRESS] [SYMBOL]` of list and describe. With schema files the
    /// address may be left out; an address always has a colon and a symbol never does.
    static func split(_ first: String?, _ second: String?, filesGiven: Bool) throws -> (address: String?, symbol: String?) {
        guard let first else { return (nil, nil) }
        if second == nil && filesGiven && !first.contains(":") { return (nil, first) }
        return (first, second)
    }

    func close() async { await channel?.close() }
}
