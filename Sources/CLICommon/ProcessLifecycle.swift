import Logging
import ServiceLifecycle

/// How every server process lives: its services run together until SIGTERM or SIGINT, then
/// shut down gracefully one at a time, the last given first (all-in-one stops its peers
/// before the scheduler they leave, and the scheduler before the manager). A service that
/// fails ends the others.
public enum ProcessLifecycle {
    public static func run(_ services: [any Service], logger: Logger) async throws {
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) },
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
