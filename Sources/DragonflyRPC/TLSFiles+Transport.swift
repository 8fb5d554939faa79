import DragonflyCommon
import RPCTransport

/// The `tls:` files as the transport's configuration, for servers and for calls.
extension TLSFiles {
    /// What the gRPC server uses; nil serves plaintext.
    public var server: TLSConfiguration? {
        guard let cert, let key else { return nil }
        var t = TLSConfiguration(certificateChainFile: cert, privateKeyFile: key, trustRootsFile: caCert)
        t.requireClientCertificate = caCert != nil
        return t
    }

    /// What this component's calls to others use; nil calls in plaintext.
    public var client: TLSConfiguration? {
        guard isEnabled else { return nil }
        return TLSConfiguration(certificateChainFile: cert, privateKeyFile: key, trustRootsFile: caCert)
    }
}

extension RPCClientConfiguration {
    /// TLS for TCP targets only: a unix socket is local and stays plaintext.
    public mutating func secure(with tls: TLSConfiguration?) {
        if case .tcp = target { self.tls = tls }
    }
}
