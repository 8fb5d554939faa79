import ArgumentParser

struct DescribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe",
        abstract: "Describe a service, method, message, enum or field.",
        discussion: """
        Prints the symbol as .proto text in grpcurl's form ("X is a message:" and the definition, \
        type names fully qualified). Without a symbol, describes every service.
        """)
    @Argument(help: "Server address: host:port or unix:PATH.")
    var address: String?
    @Argument(help: "A fully-qualified symbol, e.g. grpc.testing.TestService or grpc.testing.SimpleRequest.")
    var symbol: String?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var schema: SchemaOptions

    func run() async throws {
        let (address, symbol) = try Session.split(address, symbol, filesGiven: schema.hasFiles)
        var session = try Session.open(address: address, connection: connection, schema: schema)
        defer { Task { [session] in await session.close() } }
        do {
            var names: [String]
            if let symbol {
                names = [symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol]
            } else {
                names = try await session.source.serviceNames()
            }
            for name in names {
                let resolved = try await session.source.resolve(name)
                print(Describe.text(name, resolved, index: session.source.loader.index))
            }
        } catch {
            throw fail(error)
        }
    }
}
