/// How a task's content is cut into pieces, by Dragonfly's rules.
public struct PieceLayout: Equatable, Sendable {
    public static let minPieceLength: UInt64 = 4 << 20
    public static let maxPieceLength: UInt64 = 64 << 20
    public static let targetPieceCount: UInt64 = 500

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

    public var pieceCount: UInt32 {
        UInt32((contentLength + pieceLength - 1) / pieceLength)
    }

    public struct Piece: Equatable, Sendable {
        public let number: UInt32
        public let offset: UInt64
        public let length: UInt64
    }

    public func piece(_ number: UInt32) -> Piece? {
        let offset = UInt64(number) * pieceLength
        guard offset < contentLength else { return nil }
        return Piece(number: number, offset: offset, length: min(pieceLength, contentLength - offset))
    }

    /// The pieces covering `range` (start, length), or all of them.
    public func pieces(in range: (start: UInt64, length: UInt64)? = nil) -> [Piece] {
        guard let range else { return (0..<pieceCount).compactMap { piece($0) } }
        guard range.length > 0 else { return [] }
        let end = range.start + range.length
        return (0..<pieceCount).compactMap { piece($0) }.filter { $0.offset < end && $0.offset + pieceLength > range.start }
    }
}
