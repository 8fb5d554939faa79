/// Why the store refused to keep or hand out bytes. Nothing is recorded when these are thrown.
public enum StorageError: Error, Equatable, CustomStringConvertible, Sendable {
    case unknownTask(String)
    case unknownPiece(task: String, number: UInt32)
    case wrongLength(piece: UInt32, expected: UInt64, got: Int)
    case digestMismatch(piece: UInt32?, expected: String, actual: String)
    case noSpace(String)
    case io(String)
    case corruptMetadata(String)

    public var isDigestMismatch: Bool {
        if case .digestMismatch = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .unknownTask(let t): return "task \(t) is not stored"
        case .unknownPiece(let t, let n): return "piece \(n) of task \(t) is not stored"
        case .wrongLength(let p, let e, let g): return "piece \(p): expected length \(e) but got \(g)"
        case .digestMismatch(let p, let e, let a):
            return p.map { "piece \($0): digest mismatch, expected \(e), got \(a)" } ?? "content digest mismatch, expected \(e), got \(a)"
        case .noSpace(let s): return "not enough space: \(s)"
        case .io(let s): return "storage I/O error: \(s)"
        case .corruptMetadata(let s): return "corrupt task metadata: \(s)"
        }
    }
}
