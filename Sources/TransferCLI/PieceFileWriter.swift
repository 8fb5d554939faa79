import DragonflyCommon
import Foundation
import GeneratedAPI
#if canImport(Glibc)
import Glibc
#endif

/// `--transfer-from-dfdaemon`: the daemon sends each piece's content and dfget writes it at
/// its offset, into a temporary file beside the output that is renamed into place only once
/// every piece is there. A failed download leaves nothing at the output path.
public final class PieceFileWriter {
    public struct Failure: Error, CustomStringConvertible { public let description: String }

    private let output: URL
    private let temporary: URL
    private var fd: Int32 = -1
    private var contentLength: UInt64 = 0
    private var remaining: Set<UInt32> = []
    private var committed = false

    public init(output: URL) {
        self.output = output
        temporary = output.deletingLastPathComponent()
            .appendingPathComponent(".\(output.lastPathComponent).dfget-\(UInt32.random(in: 0...UInt32.max))")
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(temporary.path) }
    }

    /// The task's length and pieces, from the started response.
    public func start(contentLength: UInt64, pieces: [UInt32]) throws {
        guard fd < 0 else { throw Failure(description: "the daemon started the download twice") }
        fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(description: "cannot create \(temporary.path): \(String(cString: strerror(errno)))") }
        guard contentLength <= UInt64(Int64.max), ftruncate(fd, off_t(contentLength)) == 0 else {
            throw Failure(description: "cannot size \(temporary.path) to \(contentLength) bytes")
        }
        self.contentLength = contentLength
        remaining = Set(pieces)
    }

    /// Writes one piece, after checking it is one of the task's and its bytes match its digest.
    public func write(_ piece: Common_V2_Piece) throws {
        guard fd >= 0 else { throw Failure(description: "a piece arrived before the download started") }
        guard remaining.remove(piece.number) != nil else { return }
        let content = piece.content ?? []
        guard UInt64(content.count) == piece.length, piece.offset <= contentLength,
              piece.length <= contentLength - piece.offset else {
            throw Failure(description: "piece \(piece.number) does not fit the task (\(content.count) bytes at \(piece.offset))")
        }
        if piece.digest.hasPrefix("crc32:"), piece.digest != "crc32:\(Hashing.crc32(content))" {
            throw Failure(description: "piece \(piece.number) does not match its digest \(piece.digest)")
        }
        var written = 0
        while written < content.count {
            let n = content.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return pwrite(fd, base + written, buffer.count - written, off_t(piece.offset) + off_t(written))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "writing \(temporary.path): \(String(cString: strerror(errno)))") }
            written += n
        }
    }

    /// Renames the file into place once every piece was written.
    public func commit() throws {
        guard fd >= 0 else { throw Failure(description: "the daemon never started the download") }
        guard remaining.isEmpty else {
            throw Failure(description: "the daemon ended the download with \(remaining.count) pieces missing")
        }
        guard fsync(fd) == 0, rename(temporary.path, output.path) == 0 else {
            throw Failure(description: "cannot move the download to \(output.path): \(String(cString: strerror(errno)))")
        }
        committed = true
    }
}
