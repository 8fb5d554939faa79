/// What one HTTP/1.1 client may make the server hold. NIO's parser stops any head at
/// 80 KiB; these are the (lower) limits we enforce, each with its own answer.
public struct HTTPLimits: Sendable, Equatable {
    /// Longest request target (the URI); longer gets 414.
    public var maxURILength = 8 << 10
    /// Total bytes of header names and values; more gets 431.
    public var maxHeaderBytes = 32 << 10
    /// Longest request body; a longer one gets 413 and the connection is closed.
    public var maxBodyBytes = 1 << 20
    /// Whether the responder gets the body (held whole, up to `maxBodyBytes`). Off, bodies
    /// are read and dropped, so a connection costs no more than its buffers: the mirror
    /// serves GET and HEAD; the manager's REST API turns it on.
    public var keepsBodies = false
    /// Time a client has to send a whole request head (and drain its body), on a new
    /// connection or between keep-alive requests; then the connection is closed.
    public var requestTimeout: Duration = .seconds(60)

    public init() {}
}
