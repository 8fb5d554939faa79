/// The scheduling knobs, with Dragonfly's defaults.
public struct SchedulerSettings: Sendable {
    public var backToSourceCount = 200
    public var retryBackToSourceLimit = 4
    public var retryLimit = 5
    public var retryInterval: Duration = .milliseconds(500)
    public var candidateParentLimit = 3
    public var filterParentLimit = 15
    public var normalHostUploadLimit = 200
    public var seedHostUploadLimit = 2000
    public var pieceDownloadTimeout: Duration = .seconds(30 * 60)
    public var peerTTL: Duration = .seconds(24 * 3600)
    public var hostTTL: Duration = .seconds(3600)
    public var peerGCInterval: Duration = .seconds(10)
    public var taskGCInterval: Duration = .seconds(30 * 60)
    public var hostGCInterval: Duration = .seconds(5 * 60)
    /// Succeeded, idle peers beyond this many per task are let go by GC.
    public var peerCountLimitForTask = 300

    public init() {}
}
