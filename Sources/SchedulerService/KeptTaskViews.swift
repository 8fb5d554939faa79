import Foundation
import GeneratedAPI
import SchedulerCore

/// The registry's tasks and copies as the official messages of their kind.
extension KeptTask {
    var persistentCacheTask: Common_V2_PersistentCacheTask {
        var t = Common_V2_PersistentCacheTask()
        t.id = id
        t.persistentReplicaCount = replicaCount
        t.currentPersistentReplicaCount = currentPersistentReplicaCount
        t.currentReplicaCount = currentReplicaCount
        t.tag = tag
        t.application = application
        t.pieceLength = pieceLength
        t.contentLength = contentLength
        t.pieceCount = pieceCount
        t.state = state
        t.ttl = Google_Protobuf_Duration(ttl)
        t.createdAt = Self.timestamp(createdAt)
        t.updatedAt = Self.timestamp(updatedAt)
        return t
    }

    var persistentTask: Common_V2_PersistentTask {
        var t = Common_V2_PersistentTask()
        t.id = id
        t.persistentReplicaCount = replicaCount
        t.currentPersistentReplicaCount = currentPersistentReplicaCount
        t.currentReplicaCount = currentReplicaCount
        t.contentLength = contentLength
        t.pieceCount = pieceCount
        t.state = state
        t.ttl = Google_Protobuf_Duration(ttl)
        t.createdAt = Self.timestamp(createdAt)
        t.updatedAt = Self.timestamp(updatedAt)
        return t
    }

    static func timestamp(_ date: Date) -> Google_Protobuf_Timestamp {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        return Google_Protobuf_Timestamp(seconds: Int64(seconds), nanos: Int32((date.timeIntervalSince1970 - seconds) * 1e9))
    }
}

extension KeptPeer {
    var persistentCachePeer: Common_V2_PersistentCachePeer {
        var p = Common_V2_PersistentCachePeer()
        p.id = id
        p.persistent = persistent
        p.state = state
        p.cost = cost.map { Google_Protobuf_Duration($0) }
        p.task = task.persistentCacheTask
        p.host = host
        p.createdAt = KeptTask.timestamp(createdAt)
        p.updatedAt = KeptTask.timestamp(updatedAt)
        return p
    }

    var persistentPeer: Common_V2_PersistentPeer {
        var p = Common_V2_PersistentPeer()
        p.id = id
        p.persistent = persistent
        p.state = state
        p.cost = cost.map { Google_Protobuf_Duration($0) }
        p.task = task.persistentTask
        p.host = host
        p.createdAt = KeptTask.timestamp(createdAt)
        p.updatedAt = KeptTask.timestamp(updatedAt)
        return p
    }
}
