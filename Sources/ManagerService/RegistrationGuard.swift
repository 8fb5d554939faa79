import DragonflyCommon
import RPCCore

/// Who may register schedulers and seed peers (`UpdateScheduler`, `UpdateSeedPeer`, their
/// `KeepAlive`, `DeleteSeedPeer`). Dfdaemons are sent to whatever is registered, so an
/// open registration lets anyone who reaches the port put themselves between peers and
/// their data. The read-only calls dfdaemons make stay open.
public struct RegistrationGuard: Sendable {
    /// The gRPC metadata key that carries the cluster's registration secret.
    public static let metadataKey = "x-dragonfly-registration-secret"

    public enum Policy: Sendable, Equatable {
        /// The server requires client certificates signed by its CA: every caller has
        /// proved who it is before any call arrives.
        case mutualTLS
        /// Callers present the shared secret.
        case secret
        /// Anyone may register: the operator asked for it (`security.openRegistration`).
        case open
        /// Nothing configured: registration is refused, the safe default.
        case closed
    }

    public let policy: Policy
    private let secret: SharedSecret?

    public init(secret: String?, mutualTLS: Bool, open: Bool) {
        self.secret = SharedSecret(secret)
        if mutualTLS {
            policy = .mutualTLS
        } else if self.secret != nil {
            policy = .secret
        } else {
            policy = open ? .open : .closed
        }
    }

    /// Throws PERMISSION_DENIED or UNAUTHENTICATED unless the call may register `what`.
    public func authorize(_ context: RPCServerContext, _ what: String) throws {
        switch policy {
        case .mutualTLS, .open:
            return
        case .closed:
            throw RPCError(code: .permissionDenied, message: """
                registration of \(what) is turned off: configure security.registrationSecret on the manager (and \
                manager.registrationSecret on schedulers and seed peers), serve gRPC with mutual TLS, or set \
                security.openRegistration
                """)
        case .secret:
            guard let presented = context.requestMetadata[Self.metadataKey] else {
                throw RPCError(code: .unauthenticated, message: "registering \(what) needs the cluster's registration secret (\(Self.metadataKey))")
            }
            guard secret?.matches(presented) == true else {
                throw RPCError(code: .permissionDenied, message: "the registration secret is wrong")
            }
        }
    }

    public var summary: String {
        switch policy {
        case .mutualTLS: return "registration: callers' client certificates (mutual TLS)"
        case .secret: return "registration: the registration secret is required"
        case .open: return "registration: OPEN to anyone who reaches the gRPC port (security.openRegistration)"
        case .closed: return "registration: refused (no security.registrationSecret, no mutual TLS, no security.openRegistration)"
        }
    }
}
