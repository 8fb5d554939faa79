import GeneratedAPI
import RPCCore

/// What one scheduling attempt decided for a peer.
enum SchedulingDecision {
    /// Parents found and recorded as edges; send them.
    case parents([Common_V2_Peer])
    /// Tell the peer to fetch from the origin.
    case backToSource(String)
    /// Nothing usable yet; wait and try again.
    case retry
    case fail(RPCError)
}

/// What registering a peer leads to.
public enum RegisterOutcome: Sendable {
    case emptyTask
    case schedule
}

/// A request the engine wants the service to make of a seed peer: fetch this task.
public struct SeedDownload: Sendable {
    public var address: String
    public var download: Common_V2_Download
}
