import Foundation

/// The `tls:` section (or `--tls-cert`, `--tls-key`, `--tls-ca`) every component shares.
/// With a certificate and key the component serves gRPC over TLS (ALPN h2); with a CA as
/// well, its server demands client certificates signed by that CA (mutual TLS), and its
/// own calls to other components trust that CA and present the same certificate.
/// Without any of them everything stays plaintext, as upstream's default.
public struct TLSFiles: Sendable, Equatable {
    public var cert: String?
    public var key: String?
    public var caCert: String?

    public init(cert: String? = nil, key: String? = nil, caCert: String? = nil) {
        self.cert = cert
        self.key = key
        self.caCert = caCert
    }

    public var isEnabled: Bool { cert != nil || caCert != nil }

    public mutating func load(_ y: YAMLConfig) throws {
        if let v = try y.string("tls.cert") { cert = v }
        if let v = try y.string("tls.key") { key = v }
        if let v = try y.string("tls.caCert") { caCert = v }
    }

    /// Flags override the file.
    public mutating func override(cert: String?, key: String?, caCert: String?) {
        if let cert { self.cert = cert }
        if let key { self.key = key }
        if let caCert { self.caCert = caCert }
    }

    public func validate() throws {
        guard (cert == nil) == (key == nil) else { throw ConfigError("tls.cert and tls.key go together") }
        for (name, path) in [("tls.cert", cert), ("tls.key", key), ("tls.caCert", caCert)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) {
                throw ConfigError("\(name): cannot read \(path)")
            }
        }
    }
}
