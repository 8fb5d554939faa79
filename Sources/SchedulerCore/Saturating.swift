/// Arithmetic on numbers that peers send. Every field of a request is the client's to
/// choose (`piece_length` 2^60, `concurrent_piece_count` 2^32-1, a content length near
/// 2^64), and Swift traps on overflow: one hostile peer would take the whole scheduler
/// down. Bookkeeping on such numbers saturates instead; a saturated value only makes a host
/// look busy, which is the honest reading of an absurd claim.
extension UInt64 {
    func saturatingAdd(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }

    func saturatingMultiply(_ other: UInt64) -> UInt64 {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? .max : product
    }

    /// Never below zero: releases may outnumber claims after a host was announced again.
    func flooredSubtract(_ other: UInt64) -> UInt64 { self >= other ? self - other : 0 }
}

extension Int {
    func saturatingAdd(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    func flooredSubtract(_ other: Int) -> Int {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other > 0 ? 0 : .max) : Swift.max(0, difference)
    }
}

/// Bounds on what the scheduler believes of a report.
enum ReportBounds {
    /// Traffic counted for one piece. Pieces are at most tens of MiB; 4 GiB keeps the
    /// traffic counter from wrapping negative on a few lying reports.
    static let maxCountedPieceLength: UInt64 = UInt64(UInt32.max)
    /// Pieces remembered per peer and per task. StatTask answers with all of a task's
    /// pieces in one message, so this also keeps that message under the usual size limits;
    /// 65536 pieces are 256 GiB in 4 MiB pieces. Beyond it reports are counted, not kept.
    static let maxTrackedPieces = 1 << 16
    /// An announce interval beyond a day is treated as a day: hosts must still age out.
    static let maxAnnounceInterval: Duration = .seconds(24 * 3600)
}
