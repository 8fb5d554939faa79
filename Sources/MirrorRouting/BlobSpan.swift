import DragonflyCommon

/// The part of a blob one mirror response carries: the whole blob, or the range the
/// daemon said it serves; and each piece's share of it. Pure arithmetic on lengths the
/// daemon reported, apart from the response that writes the bytes.
public struct BlobSpan: Sendable, Equatable {
    public let contentLength: UInt64
    /// The bytes the body carries, inclusive; nil for an empty body.
    public let bytes: ByteRange?
    /// True when the response is a 206 for a range, false for the whole blob.
    public let isPartial: Bool

    /// `served` is the daemon's (start, length); one that is empty or does not fit in the
    /// blob is not a range the daemon can serve, so the whole blob is.
    public init(contentLength: UInt64, served: (start: UInt64, length: UInt64)?) {
        self.contentLength = contentLength
        if let served, served.length > 0, served.start < contentLength, served.length <= contentLength - served.start {
            bytes = ByteRange(first: served.start, last: served.start + served.length - 1)
            isPartial = true
        } else {
            bytes = contentLength > 0 ? ByteRange(first: 0, last: contentLength - 1) : nil
            isPartial = false
        }
    }

    public var bodyLength: UInt64 { bytes?.count ?? 0 }

    /// `Content-Range` of a 206.
    public var contentRange: String? {
        guard isPartial, let bytes else { return nil }
        return "bytes \(bytes.first)-\(bytes.last)/\(contentLength)"
    }

    /// The bytes of a piece at `offset` of `length` that belong in the body, as positions
    /// within the piece; nil when none do.
    public func slice(ofPieceAt offset: UInt64, length: UInt64) -> Range<Int>? {
        guard let bytes, length > 0 else { return nil }
        let (pieceEnd, overflow) = offset.addingReportingOverflow(length)
        guard !overflow else { return nil }
        let start = max(bytes.first, offset), end = min(bytes.last + 1, pieceEnd)
        guard start < end, let lower = Int(exactly: start - offset), let upper = Int(exactly: end - offset) else { return nil }
        return lower..<upper
    }
}
