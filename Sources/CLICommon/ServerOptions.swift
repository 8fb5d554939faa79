import ArgumentParser
import DragonflyCommon

/// `--tls-cert`, `--tls-key`, `--tls-ca`: the same for every component.
public struct TLSOptions: ParsableArguments {
    @Option(help: "PEM certificate chain: serve gRPC over TLS (tls.cert).")
    public var tlsCert: String?
    @Option(help: "PEM private key of --tls-cert (tls.key).")
    public var tlsKey: String?
    @Option(help: "CA bundle: require client certificates it signed (mutual TLS), and trust it when calling other components (tls.caCert).")
    public var tlsCa: String?

    public init() {}

    /// The config file's `tls:` with these flags over it, checked.
    public func applied(to files: TLSFiles) throws -> TLSFiles {
        var f = files
        f.override(cert: tlsCert, key: tlsKey, caCert: tlsCa)
        try f.validate()
        return f
    }
}

/// `--log-level` and `--log-format`: the same for every component.
public struct LogOptions: ParsableArguments {
    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    public var logLevel = "info"
    @Option(help: "text or json.")
    public var logFormat = "text"

    public init() {}

    public func bootstrap() throws {
        try LogSetup.bootstrap(level: logLevel, format: logFormat)
    }
}

/// `--check-config`: the config has been loaded and checked by the caller; say so.
public enum ConfigCheck {
    public static func passed() {
        print("config OK")
    }
}
