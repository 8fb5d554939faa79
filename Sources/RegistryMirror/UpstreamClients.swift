import AsyncHTTPClient
import NIOSSL
import NIOCore

/// HTTP clients for talking to registries on the client's behalf. Redirects are not
/// followed: they go back to the client, which follows them itself (registries send
/// blob GETs to object storage that way). Insecure registries get a client that does not
/// verify certificates; every other upstream is verified.
final class UpstreamClients: Sendable {
    private let verified: HTTPClient
    private let unverified: HTTPClient

    init() {
        var config = HTTPClient.Configuration(redirectConfiguration: .disallow)
        config.timeout = .init(connect: .seconds(10), read: .seconds(120))
        verified = HTTPClient(configuration: config)
        var insecure = config
        insecure.tlsConfiguration = .makeClientConfiguration()
        insecure.tlsConfiguration?.certificateVerification = .none
        unverified = HTTPClient(configuration: insecure)
    }

    func client(insecure: Bool) -> HTTPClient { insecure ? unverified : verified }

    func shutdown() async {
        try? await verified.shutdown()
        try? await unverified.shutdown()
    }
}
