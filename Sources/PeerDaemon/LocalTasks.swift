import DragonflyCommon
import Foundation
import GeneratedAPI
import Locking
import PeerStorage
import RPCCore

/// Per task, pieces handed to children now and since the daemon started, for
/// `StatLocalTask`'s `uploading_count` and `uploaded_count`.
final class UploadCounts: Sendable {
    private struct Count { var uploading = 0; var uploaded: UInt64 = 0 }
    private let counts = Locked<[String: Count]>([:])
    /// Entries for tasks long gone are dropped once there are this many.
    private let limit = 10_000

    func begin(_ taskID: String) { counts.withLock { $0[taskID, default: Count()].uploading += 1 } }

    func end(_ taskID: String, served: Bool) {
        counts.withLock { c in
            c[taskID, default: Count()].uploading -= 1
            if served { c[taskID, default: Count()].uploaded &+= 1 }
        }
    }

    func of(_ taskID: String) -> (uploading: UInt64, uploaded: UInt64) {
        counts.withLock { c in
            let n = c[taskID] ?? Count()
            return (UInt64(max(0, n.uploading)), n.uploaded)
        }
    }

    /// Keeps the map to tasks that still exist when it grows past `limit`.
    func prune(keeping live: Set<String>) {
        counts.withLock { c in
            guard c.count > limit else { return }
            c = c.filter { live.contains($0.key) || $0.value.uploading > 0 }
        }
    }
}

extension Daemon {
    /// `StatLocalTask`: what this node's store holds of a task, as upstream's dfdaemon says it.
    func localTask(_ taskID: String) async throws -> Dfdaemon_V2_StatLocalTaskResponse {
        guard let m = try? await store.metadata(taskID) else {
            throw RPCError(code: .notFound, message: "local task not found: \(taskID)")
        }
        let (uploading, uploaded) = uploadCounts.of(taskID)
        return Dfdaemon_V2_StatLocalTaskResponse.with { r in
            r.taskId = m.taskID
            r.pieceLength = m.pieceLength
            r.contentLength = m.contentLength
            r.responseHeader = m.responseHeader
            r.uploadingCount = uploading
            r.uploadedCount = uploaded
            r.createdAt = Self.timestamp(m.createdAt)
            r.updatedAt = Self.timestamp(m.accessedAt)
            r.finishedAt = m.finished ? Self.timestamp(m.finishedAt ?? m.accessedAt) : nil
        }
    }

    /// `ListLocalTasks`: every task in the store, finished or being fetched.
    func localTasks() async -> [Dfdaemon_V2_StatLocalTaskResponse] {
        let ids = store.taskIDs()
        uploadCounts.prune(keeping: Set(ids))
        var tasks: [Dfdaemon_V2_StatLocalTaskResponse] = []
        for id in ids.sorted() {
            if let task = try? await localTask(id) { tasks.append(task) }
        }
        return tasks
    }

    /// `DeleteLocalTask`: drops the task from this node's store only (the scheduler learns
    /// of it when a child asks this host for a piece it no longer has).
    func deleteLocalTask(_ taskID: String) async throws {
        guard (try? await store.metadata(taskID)) != nil else {
            throw RPCError(code: .notFound, message: "local task not found: \(taskID)")
        }
        do { try await store.delete(taskID: taskID) } catch { throw RPCError(code: .internal, message: "\(error)") }
        logger.info("task \(taskID) deleted from the local store on request")
    }

    static func timestamp(_ date: Date) -> Google_Protobuf_Timestamp {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        return Google_Protobuf_Timestamp(seconds: Int64(seconds), nanos: Int32((date.timeIntervalSince1970 - seconds) * 1e9))
    }
}
