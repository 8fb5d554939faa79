import DragonflyCommon
import MirrorRouting

/// The arithmetic on lengths a client or an origin names: a content length and a piece
/// length (8 bytes each, big-endian), then a `Range` header for the mirror. A layout is
/// refused or tiles the content exactly; a range lies inside the content; the pieces that
/// cover it are the ones it touches. Nothing may trap.
enum LayoutTarget {
    static func run(_ input: UnsafeRawBufferPointer) {
        guard input.count >= 16 else { return }
        func word(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(input[at + $1]) } }
        let contentLength = word(0)
        let requested = word(8)
        let header = String(decoding: input[16...], as: UTF8.self)

        let unchecked = PieceLayout(contentLength: contentLength, pieceLength: requested)
        _ = (unchecked.pieceCount, unchecked.piece(UInt32(truncatingIfNeeded: requested)))
        guard let layout = try? PieceLayout.checked(contentLength: contentLength, requestedPieceLength: requested % 3 == 0 ? nil : requested) else {
            return
        }
        precondition(PieceLayout.allowedPieceLengths.contains(layout.pieceLength))
        precondition(layout.exactPieceCount <= PieceLayout.maxPieceCount)
        if layout.pieceCount <= 4096 {
            var next: UInt64 = 0
            for piece in layout.pieces() {
                precondition(piece.offset == next && piece.length > 0 && piece.length <= layout.pieceLength, "pieces must tile the content")
                next = piece.offset + piece.length
            }
            precondition(next == contentLength, "pieces must end at the content's end")
        }
        switch ByteRange.parse(header, length: contentLength) {
        case .range(let r):
            precondition(r.first <= r.last && r.last < contentLength, "a range must lie inside the content")
            if layout.pieceCount <= 4096 {
                let covering = layout.pieces(in: (start: r.first, length: r.count))
                precondition(covering.first?.offset ?? 1 <= r.first && (covering.last.map { $0.offset + $0.length } ?? 0) > r.last)
            }
        case .whole, .unsatisfiable:
            break
        }
    }
}
