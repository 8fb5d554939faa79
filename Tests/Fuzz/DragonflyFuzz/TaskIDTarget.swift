import DragonflyCommon

/// The task-id URL normaliser: a URL, tag, application and filtered query parameters
/// (separated by newlines in the input) must give an id or an error, and the same id
/// every time.
enum TaskIDTarget {
    static func run(_ input: UnsafeRawBufferPointer) {
        let parts = String(decoding: input, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let url = parts.first else { return }
        let tag = parts.count > 1 ? parts[1] : nil
        let application = parts.count > 2 ? parts[2] : nil
        let filtered = parts.count > 3 ? parts[3].split(separator: "&").map(String.init) : []
        let pieceLength: UInt64? = input.count % 3 == 0 ? 4 << 20 : nil
        let first = try? TaskID.standard(url: url, tag: tag, application: application, pieceLength: pieceLength,
                                         filteredQueryParams: filtered)
        let second = try? TaskID.standard(url: url, tag: tag, application: application, pieceLength: pieceLength,
                                          filteredQueryParams: filtered)
        precondition(first == second, "the task id of one input changed between calls")
        if let id = first { precondition(id.count == 64 && id.allSatisfy(\.isHexDigit), "not a sha256 hex id: \(id)") }
        _ = LogRedaction.url(url)
    }
}
