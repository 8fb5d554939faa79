import COpenSSL

/// TLS settings, as PEM files on disk.
public struct TLSConfiguration: Sendable {
    /// Our certificate chain (server: required; client: only for mutual TLS).
    public var certificateChainFile: String?
    public var privateKeyFile: String?
    /// CA bundle used to verify the peer; nil uses the system's store (client) or no
    /// client verification (server).
    public var trustRootsFile: String?
    /// Server: demand and verify a client certificate (mutual TLS).
    public var requireClientCertificate = false
    /// Client: skip verifying the server's certificate. For tests against self-signed peers only.
    public var insecureSkipVerify = false
    /// Client: the name to verify and send as SNI, when it differs from the dialled host.
    public var serverNameOverride: String?

    public init(certificateChainFile: String? = nil, privateKeyFile: String? = nil, trustRootsFile: String? = nil) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.trustRootsFile = trustRootsFile
    }
}

/// An OpenSSL failure, with OpenSSL's own error queue text.
public struct TLSError: Error, CustomStringConvertible {
    public var description: String

    init(_ what: String) {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buf, buf.count)
            reasons.append(String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        description = reasons.isEmpty ? what : "\(what): \(reasons.joined(separator: "; "))"
    }
}

/// A configured `SSL_CTX`. OpenSSL contexts are safe to share across threads once set up.
final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer
    let configuration: TLSConfiguration

    /// OpenSSL frees its global state in an atexit handler by default; an event-loop
    /// thread still finishing a TLS close when the process exits would then touch freed
    /// locks and crash. Initialise it once without that handler.
    private static let initialised: Bool = OPENSSL_init_ssl(UInt64(OPENSSL_INIT_NO_ATEXIT), nil) == 1

    init(configuration: TLSConfiguration, server: Bool) throws {
        guard Self.initialised else { throw TLSError("OPENSSL_init_ssl failed") }
        guard let ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()) else {
            throw TLSError("SSL_CTX_new failed")
        }
        self.ctx = ctx
        self.configuration = configuration
        SSL_CTX_set_min_proto_version_shim(ctx)
        if let chain = configuration.certificateChainFile {
            guard SSL_CTX_use_certificate_chain_file(ctx, chain) == 1 else {
                throw TLSError("cannot load certificate chain \(chain)")
            }
        }
        if let key = configuration.privateKeyFile {
            guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 else {
                throw TLSError("cannot load private key \(key)")
            }
            guard SSL_CTX_check_private_key(ctx) == 1 else { throw TLSError("private key does not match certificate") }
        }
        if let roots = configuration.trustRootsFile {
            guard SSL_CTX_load_verify_locations(ctx, roots, nil) == 1 else {
                throw TLSError("cannot load trust roots \(roots)")
            }
        } else if !server {
            SSL_CTX_set_default_verify_paths(ctx)
        }
        if server {
            if configuration.certificateChainFile == nil || configuration.privateKeyFile == nil {
                throw TLSError("a TLS server needs a certificate chain and a private key")
            }
            if configuration.requireClientCertificate {
                SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
            }
            SSL_CTX_set_alpn_select_cb(ctx, { _, out, outLen, input, inputLen, _ in
                // Pick "h2" from the client's list; refuse anything else (gRPC needs HTTP/2).
                guard let out, let outLen, let input else { return SSL_TLSEXT_ERR_ALERT_FATAL }
                var i = 0
                let n = Int(inputLen)
                while i < n {
                    let len = Int(input[i])
                    if len == 2 && i + 2 < n && input[i + 1] == UInt8(ascii: "h") && input[i + 2] == UInt8(ascii: "2") {
                        out.pointee = UnsafePointer(input + i + 1)
                        outLen.pointee = 2
                        return SSL_TLSEXT_ERR_OK
                    }
                    i += 1 + len
                }
                return SSL_TLSEXT_ERR_ALERT_FATAL
            }, nil)
        } else {
            SSL_CTX_set_verify(ctx, configuration.insecureSkipVerify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nil)
        }
    }

    deinit {
        SSL_CTX_free(ctx)
    }
}
