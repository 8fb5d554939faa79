/// Bytes the store hashes and writes where they are: an array, or a slice of one (a
/// piece's content left in the message it arrived in).
public protocol PieceBytes: Sendable {
    var count: Int { get }
    var isEmpty: Bool { get }
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension Array: PieceBytes where Element == UInt8 {}
extension ArraySlice: PieceBytes where Element == UInt8 {}
