import MirrorRouting
import Testing

@Suite struct BlobSpanTests {
    @Test func withoutARangeTheWholeBlobIsServed() {
        let span = BlobSpan(contentLength: 10, served: nil)
        #expect(!span.isPartial && span.bodyLength == 10 && span.contentRange == nil)
        #expect(span.slice(ofPieceAt: 0, length: 4) == 0..<4)
        #expect(span.slice(ofPieceAt: 8, length: 2) == 0..<2)
    }

    @Test func anEmptyBlobHasNoBodyAndNoSlices() {
        let span = BlobSpan(contentLength: 0, served: nil)
        #expect(span.bodyLength == 0 && span.bytes == nil && !span.isPartial)
        #expect(span.slice(ofPieceAt: 0, length: 4) == nil)
    }

    @Test func aRangeAcrossPiecesTakesEachPiecesShare() {
        // Pieces of 4 bytes; bytes 3...9 of 12.
        let span = BlobSpan(contentLength: 12, served: (start: 3, length: 7))
        #expect(span.isPartial && span.bodyLength == 7)
        #expect(span.contentRange == "bytes 3-9/12")
        #expect(span.slice(ofPieceAt: 0, length: 4) == 3..<4)
        #expect(span.slice(ofPieceAt: 4, length: 4) == 0..<4)
        #expect(span.slice(ofPieceAt: 8, length: 4) == 0..<2)
        let total = [0, 4, 8].compactMap { span.slice(ofPieceAt: UInt64($0), length: 4)?.count }.reduce(0, +)
        #expect(UInt64(total) == span.bodyLength)
    }

    @Test func aRangeInsideOnePieceAndPiecesOutsideIt() {
        let span = BlobSpan(contentLength: 100, served: (start: 10, length: 1))
        #expect(span.contentRange == "bytes 10-10/100")
        #expect(span.slice(ofPieceAt: 8, length: 8) == 2..<3)
        #expect(span.slice(ofPieceAt: 0, length: 8) == nil)
        #expect(span.slice(ofPieceAt: 16, length: 8) == nil)
    }

    @Test(arguments: [(0, 0), (10, 1), (5, 6), (UInt64.max, 1), (0, UInt64.max)] as [(UInt64, UInt64)])
    func aRangeThatDoesNotFitServesTheWholeBlob(start: UInt64, length: UInt64) {
        let span = BlobSpan(contentLength: 10, served: (start: start, length: length))
        #expect(!span.isPartial && span.bodyLength == 10 && span.contentRange == nil)
    }

    @Test func hostilePieceBoundsNeverTrap() {
        let span = BlobSpan(contentLength: UInt64.max, served: nil)
        #expect(span.slice(ofPieceAt: UInt64.max - 1, length: 5) == nil)
        #expect(span.slice(ofPieceAt: 0, length: 0) == nil)
        #expect(BlobSpan(contentLength: 10, served: nil).slice(ofPieceAt: 20, length: 4) == nil)
    }
}
