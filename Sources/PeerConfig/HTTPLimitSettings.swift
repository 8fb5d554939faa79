/// The `http.*` keys: limits on what one HTTP/1.1 client of the mirror may make the
/// dfdaemon hold. Only what the file sets; the HTTP server keeps the defaults.
public struct HTTPLimitSettings: Sendable, Equatable {
    public var maxURILength: Int?
    public var maxHeaderBytes: Int?
    public var maxBodyBytes: Int?
    public var requestTimeout: Duration?

    public init() {}
}
