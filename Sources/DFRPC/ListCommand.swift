import ArgumentParser

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the services a server exposes, or one service's methods.",
        discussion: """
        With a service name, prints its methods one fully-qualified name per line \
        (pkg.Service.Method), as grpcurl does. With --protoset/--proto the address may be left out.
        """)
    @Argument(help: "Server address: host:port or unix:PATH.")
    var address: String?
    @Argument(help: "A fully-qualified service name, e.g. grpc.testing.TestService.")
    var service: String?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var schema: SchemaOptions

    func run() async throws {
        let (address, service) = try Session.split(address, service, filesGiven: schema.hasFiles)
        var session = try Session.open(address: address, connection: connection, schema: schema)
        defer { Task { [session] in await session.close() } }
        do {
            guard let service else {
                let names = try await session.source.serviceNames()
                print(names.isEmpty ? "(No services)" : names.joined(separator: "\n"))
                return
            }
            let name = service.hasPrefix(".") ? String(service.dropFirst()) : service
            let (descriptor, scope) = try await session.source.service(name)
            let methods = descriptor.method.map { scope.fullName + "." + ($0.name ?? "") }.sorted()
            print(methods.isEmpty ? "(No methods)" : methods.joined(separator: "\n"))
        } catch {
            throw fail(error)
        }
    }
}
