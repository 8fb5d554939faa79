import DragonflyCommon
import RPCCore

/// Who may ask this scheduler to preheat or to survey its peers. A preheat makes every
/// chosen peer fetch what the caller names, and resolving an image makes the scheduler
/// fetch URLs itself, so both are for the cluster's own manager: a caller with a client
/// certificate (the scheduler serves mutual TLS), or one that presents the cluster's
/// registration secret, the one this scheduler presents to the manager. With neither
/// configured, they are refused.
public struct PreheatAccess: Sendable {
    public static let metadataKey = "x-dragonfly-registration-secret"

    enum Policy: Sendable { case mutualTLS, secret, closed }
    let policy: Policy
    private let secret: SharedSecret?

    public init(secret: String?, mutualTLS: Bool) {
        self.secret = SharedSecret(secret)
        policy = mutualTLS ? .mutualTLS : (self.secret != nil ? .secret : .closed)
    }

    public func authorize(_ context: RPCServerContext, _ method: String) throws {
        switch policy {
        case .mutualTLS:
            return
        case .closed:
            throw RPCError(code: .permissionDenied, message: """
                \(method) is turned off: it needs mutual TLS (tls.caCert) or the cluster's registration secret \
                (manager.registrationSecret or $DRAGONFLY_REGISTRATION_SECRET), presented in \(Self.metadataKey)
                """)
        case .secret:
            guard let presented = context.requestMetadata[Self.metadataKey] else {
                throw RPCError(code: .unauthenticated, message: "\(method) needs the cluster's registration secret (\(Self.metadataKey))")
            }
            guard secret?.matches(presented) == true else {
                throw RPCError(code: .permissionDenied, message: "\(method): wrong registration secret")
            }
        }
    }
}
