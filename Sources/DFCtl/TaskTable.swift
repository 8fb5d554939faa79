import Foundation
import GeneratedAPI

/// Local tasks as a table with a header line, one task a line, columns aligned.
enum TaskTable {
    static let header = ["TASK ID", "STATE", "CONTENT LENGTH", "PIECE LENGTH", "UPLOADED", "UPLOADING", "CREATED", "FINISHED"]

    static func render(_ tasks: [Dfdaemon_V2_StatLocalTaskResponse]) -> String {
        let rows = [header] + tasks.map { t in
            [t.taskId, t.finishedAt == nil ? "partial" : "finished",
             t.contentLength.map(String.init) ?? "-", t.pieceLength.map(String.init) ?? "-",
             String(t.uploadedCount), String(t.uploadingCount),
             time(t.createdAt), time(t.finishedAt)]
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// UTC, to the second; `-` when absent.
    static func time(_ stamp: Google_Protobuf_Timestamp?) -> String {
        guard let stamp else { return "-" }
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(stamp.seconds)))
    }
}
