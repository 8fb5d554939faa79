/// Peer states, with the exact strings Dragonfly reports in `common.v2.Peer.state`.
public enum PeerState: String, Sendable, CaseIterable {
    case pending = "Pending"
    case receivedEmpty = "ReceivedEmpty"
    case receivedTiny = "ReceivedTiny"
    case receivedSmall = "ReceivedSmall"
    case receivedNormal = "ReceivedNormal"
    case running = "Running"
    case backToSource = "BackToSource"
    case succeeded = "Succeeded"
    case failed = "Failed"
    case leave = "Leave"

    var isReceived: Bool {
        self == .receivedEmpty || self == .receivedTiny || self == .receivedSmall || self == .receivedNormal
    }
}

/// Peer state machine events, as Dragonfly names them.
public enum PeerEvent: String, Sendable {
    case registerEmpty, registerNormal, download, downloadBackToSource, downloadSucceeded, downloadFailed, leave

    /// The state an event leads to from `state`, or nil when the event is not allowed there.
    public func transition(from state: PeerState) -> PeerState? {
        switch self {
        case .registerEmpty: return state == .pending ? .receivedEmpty : nil
        case .registerNormal: return state == .pending ? .receivedNormal : nil
        case .download: return state.isReceived ? .running : nil
        case .downloadBackToSource: return state.isReceived || state == .running ? .backToSource : nil
        case .downloadSucceeded:
            return state.isReceived || state == .running || state == .backToSource ? .succeeded : nil
        case .downloadFailed:
            return state == .pending || state.isReceived || state == .running || state == .backToSource
                || state == .succeeded ? .failed : nil
        case .leave: return state == .leave ? nil : .leave
        }
    }
}

public enum TaskState: String, Sendable {
    case pending = "Pending"
    case running = "Running"
    case succeeded = "Succeeded"
    case failed = "Failed"
    case leave = "Leave"
}

public enum TaskEvent: Sendable {
    case download, downloadSucceeded, downloadFailed, leave

    public func transition(from state: TaskState) -> TaskState? {
        switch self {
        case .download: return state == .running ? nil : .running
        case .downloadSucceeded: return [.leave, .running, .failed].contains(state) ? .succeeded : nil
        case .downloadFailed: return state == .running ? .failed : nil
        case .leave: return state == .leave ? nil : .leave
        }
    }
}

/// Host types as `common.v2.Host.type` numbers them; anything but normal is a seed.
public enum HostType: UInt32, Sendable {
    case normal = 0, superSeed = 1, strongSeed = 2, weakSeed = 3

    public var label: String {
        switch self {
        case .normal: return "normal"
        case .superSeed: return "super"
        case .strongSeed: return "strong"
        case .weakSeed: return "weak"
        }
    }
    public var isSeed: Bool { self != .normal }
}
