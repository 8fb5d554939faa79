import DragonflyCommon
import PeerStorage
import Testing
@testable import PeerDaemon

/// What a parent without our piece stream announces on SyncPieces is hostile input: piece
/// numbers are bounded by the task, and its Vortex endpoint stays on the parent's host.
@Suite struct VortexParentLinkTests {
    let layout = PieceLayout(contentLength: 4 * 4_194_304, pieceLength: 4_194_304)

    @Test func aPieceBeyondTheTaskEndsTheParentsAnnouncements() throws {
        let link = VortexParentLink(parentID: "p", pieceCount: layout.pieceCount, changes: ChangeSignal())
        try link.announce(3, ip: "", port: 4000, address: "127.0.0.1:65000")
        #expect(throws: (any Error).self) { try link.announce(4, ip: "", port: 4000, address: "127.0.0.1:65000") }
        #expect(throws: (any Error).self) { try link.announce(.max, ip: "", port: 4000, address: "127.0.0.1:65000") }
    }

    @Test func theVortexEndpointIsOnTheHostTheParentWasReachedAt() async throws {
        let queue = PieceQueue(layout.pieces())
        let link = VortexParentLink(parentID: "p", pieceCount: layout.pieceCount, changes: queue.changes)
        try link.announce(2, ip: "198.18.0.9", port: 4000, address: "127.0.0.1:65000")
        let next = try await link.next(from: queue, timeout: .seconds(5))
        #expect(next?.0.number == 2)
        #expect(next?.host == "127.0.0.1", "the parent's own ip is not followed elsewhere")
        #expect(next?.port == 4000)
    }
}
