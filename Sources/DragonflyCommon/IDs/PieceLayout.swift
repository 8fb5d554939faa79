/// How a task's content is cut into pieces, by Dragonfly's rules.
public struct PieceLayout: Equatable, Sendable {
    public static let minPieceLength: UInt64 = 4 << 20
    public static let maxPieceLength: UInt64 = 64 << 20
    public static let targetPieceCount: UInt64 = 500
    /// The most pieces one task may have. A client naming a piece length, or an origin
    /// naming a length, must not make one request cost millions of origin requests and
    /// metadata entries; with the smallest piece length this still allows 4 TiB.
    public static let maxPieceCount: UInt64 = 1 << 20
    /// The piece lengths a client may ask for (`piece_length`, `X-Dragonfly-Piece-Length`,
    /// `download.pieceSize`): Dragonfly's own range.
    public static let allowedPieceLengths: ClosedRange<UInt64> = minPieceLength...maxPieceLength

    /// Why a requested layout is refused.
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The layout for content of `contentLength` with the piece length a client asked for
    /// (nil: Dragonfly's rule), refused when the piece length is out of range or the task
    /// would have more than `maxPieceCount` pieces.
    public static func checked(contentLength: UInt64, requestedPieceLength: UInt64?) throws(Refusal) -> PieceLayout {
        if let requested = requestedPieceLength, !allowedPieceLengths.contains(requested) {
            throw Refusal(description: "piece length \(requested) is outside \(allowedPieceLengths.lowerBound)...\(allowedPieceLengths.upperBound) bytes")
        }
        let layout = PieceLayout(contentLength: contentLength, pieceLength: requestedPieceLength)
        guard layout.exactPieceCount <= maxPieceCount else {
            throw Refusal(description: "\(contentLength) bytes in pieces of \(layout.pieceLength) would be \(layout.exactPieceCount) pieces; at most \(maxPieceCount) are allowed")
        }
        return layout
    }

    public let contentLength: UInt64
    public let pieceLength: UInt64

    /// `pieceLength` nil uses Dragonfly's rule: the next power of two of length / 500,
    /// clamped to 4–64 MiB.
    public init(contentLength: UInt64, pieceLength: UInt64? = nil) {
        self.contentLength = contentLength
        self.pieceLength = max(1, pieceLength ?? Self.optimalPieceLength(for: contentLength))
    }

    public static func optimalPieceLength(for contentLength: UInt64) -> UInt64 {
        let target = contentLength / targetPieceCount
        var power: UInt64 = 1
        while power < target { power <<= 1 }
        if power >= maxPieceLength { return maxPieceLength }
        if power <= minPieceLength { return minPieceLength }
        return power
    }

    /// The number of pieces, computed without overflow for any pair of lengths.
    public var exactPieceCount: UInt64 {
        contentLength / pieceLength + (contentLength % pieceLength == 0 ? 0 : 1)
    }

    /// Piece numbers are 32-bit on the wire; a layout that would need more saturates here,
    /// and `checked` refuses it long before.
    public var pieceCount: UInt32 { UInt32(clamping: exactPieceCount) }

    public struct Piece: Equatable, Sendable {
        public let number: UInt32
        public let offset: UInt64
        public let length: UInt64
    }

    public func piece(_ number: UInt32) -> Piece? {
        let (offset, overflow) = UInt64(number).multipliedReportingOverflow(by: pieceLength)
        guard !overflow, offset < contentLength else { return nil }
        return Piece(number: number, offset: offset, length: min(pieceLength, contentLength - offset))
    }

    /// The pieces covering `range` (start, length), or all of them.
    public func pieces(in range: (start: UInt64, length: UInt64)? = nil) -> [Piece] {
        guard let range else { return (0..<pieceCount).compactMap { piece($0) } }
        guard range.length > 0 else { return [] }
        let end = range.start.addingReportingOverflow(range.length)
        let last = end.overflow ? UInt64.max : end.partialValue
        return (0..<pieceCount).compactMap { piece($0) }.filter { $0.offset < last && $0.offset + $0.length > range.start }
    }
}
