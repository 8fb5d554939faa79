import DragonflyCommon
import RPCTransport

extension RPCServerConfiguration {
    /// This configuration with `limits` applied.
    public func limited(by limits: RPCLimits) -> RPCServerConfiguration {
        var c = self
        c.maxConcurrentStreams = limits.maxConcurrentStreams
        c.maxHeaderListSize = limits.maxHeaderListSize
        c.maxFrameSize = limits.maxFrameSize
        c.initialWindowSize = limits.initialWindowSize
        c.connectionWindowSize = Int32(clamping: limits.connectionWindowSize)
        c.maxReceiveMessageSize = limits.maxReceiveMessageSize
        c.handshakeTimeout = limits.handshakeTimeout
        c.idleTimeout = limits.idleTimeout
        c.keepaliveInterval = limits.keepaliveInterval
        c.keepaliveTimeout = limits.keepaliveTimeout
        c.maxConnectionsPerIP = limits.maxConnectionsPerIP
        c.maxConnections = limits.maxConnections
        c.requestRateLimit = limits.requestRateLimit
        c.requestBurst = limits.requestBurst
        return c
    }
}
