import PeerStorage

extension Daemon {
    /// Every `gcInterval`: drops tasks unused for `taskExpireTime`, then, least recently
    /// used first, whatever keeps the store over `diskGCThreshold` or the file system over
    /// `diskGCThresholdPercent`. Runs until cancelled.
    public func collectGarbage() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: config.gcInterval)
            await collectGarbageOnce()
        }
    }

    func collectGarbageOnce() async {
        var removed = await store.collect(olderThan: Double(config.taskExpireTime.components.seconds))
        if let limit = config.diskGCThreshold {
            removed += await store.collect(toAtMost: limit)
        }
        if let percent = config.diskGCThresholdPercent, let usage = store.fileSystemUsage(), usage.usedPercent > percent {
            // Free what brings the whole file system back under the threshold; other users
            // of the disk count too, but only our tasks can be dropped.
            let excess = UInt64((usage.usedPercent - percent) / 100 * Double(usage.totalBytes))
            let held = await store.storedBytes()
            removed += await store.collect(toAtMost: held > excess ? held - excess : 0)
        }
        if !removed.isEmpty {
            logger.info("gc removed \(removed.count) task(s): \(removed.joined(separator: ", "))")
            metrics.counter("gc_task_total", help: "Tasks removed by storage GC").increment(by: Int64(removed.count))
        }
    }
}
