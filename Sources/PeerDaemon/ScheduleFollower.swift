import GeneratedAPI

/// What a download does with each answer of its scheduler, as values: the scheduler's
/// stream and the fetches are `downloadThroughScheduler`'s; the choices are made here,
/// where they can be tested without either.
struct ScheduleFollower {
    /// How many sets of parents one download tries before it leaves the rest to the origin.
    static let maxRounds = 8

    /// `disable_back_to_source`: an answer that sends this peer to the origin fails it.
    let disableBackToSource: Bool
    private(set) var started = false
    /// Parents that failed this download: not used again, whatever the scheduler says.
    private(set) var blocked: [String: Common_V2_Peer] = [:]
    private(set) var rounds = 0

    init(disableBackToSource: Bool) { self.disableBackToSource = disableBackToSource }

    enum Step: Equatable {
        /// The task is empty: report the peer finished.
        case finishEmpty
        /// Fetch every missing piece from the origin, reporting it as back-to-source.
        case backToSource
        /// Report the peer failed with this reason and end the download.
        case fail(String)
        /// Fetch from these parents; report the peer started first when `announceStarted`.
        case fetch(parents: [Common_V2_Peer], announceStarted: Bool)
        /// End the download without a report (the origin, if allowed, remains to the caller).
        case giveUp(String)
        /// An answer that needs nothing from this peer.
        case ignore
    }

    mutating func step(on response: Scheduler_V2_AnnouncePeerResponse.ResponseOneof?) -> Step {
        switch response {
        case .emptyTaskResponse?:
            return .finishEmpty
        case .needBackToSourceResponse(let answer)?:
            guard !disableBackToSource else {
                return .fail("the scheduler sent this peer to the origin (\(answer.descriptionField ?? "no parent")), and back-to-source is disabled")
            }
            return .backToSource
        case .normalTaskResponse(let normal)?:
            rounds += 1
            guard rounds <= Self.maxRounds else { return .giveUp("no usable parent after \(Self.maxRounds) schedules") }
            let announce = !started
            started = true
            return .fetch(parents: normal.candidateParents.filter { blocked[$0.id] == nil }, announceStarted: announce)
        default:
            return .ignore
        }
    }

    enum AfterRound: Equatable {
        /// Every piece is here: report the peer finished.
        case finished
        /// A parent's failure was reported, which makes the scheduler answer again.
        case awaitAnswer
        /// Pieces are missing and no parent failed: ask for other parents.
        case reschedule(Scheduler_V2_ReschedulePeerRequest)
    }

    /// After fetching from `offered` parents, of which `failed` failed this download.
    mutating func after(offered: [Common_V2_Peer], failed: [String], piecesMissing: Bool) -> AfterRound {
        for id in failed { blocked[id] = offered.first { $0.id == id } ?? Common_V2_Peer.with { $0.id = id } }
        guard piecesMissing else { return .finished }
        guard failed.isEmpty else { return .awaitAnswer }
        var reschedule = Scheduler_V2_ReschedulePeerRequest()
        reschedule.candidateParents = blocked.keys.sorted().compactMap { blocked[$0] }
        reschedule.descriptionField = "parents failed: \(blocked.keys.sorted().joined(separator: ","))"
        return .reschedule(reschedule)
    }
}
