import ArgumentParser
import DragonflyCommon
import Foundation
import GeneratedAPI
import RPCCore
import TransferCLI

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a persistent cache task to a file, from this node's copy or its peers'.")

    @Argument(help: "The task id dfcache import printed.")
    var id: String
    @Option(name: [.customShort("O"), .long], help: "Where to write the file.")
    var output: String
    @Option(help: "The task's tag, as imported.")
    var tag: String?
    @Option(help: "The task's application, as imported.")
    var application: String?
    @Option(help: "Check the content against this digest: sha256:<hex>, sha512:<hex> or crc32:<hex>.")
    var digest: String?
    @Flag(help: "Have the dfdaemon send each piece's content and write the file here, instead of the daemon writing it.")
    var transferFromDfdaemon = false
    @Flag(help: "Replace the output file if it exists.")
    var overwrite = false
    @Option(help: "Give up after this long.")
    var timeout = "2h"
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let log = client.log
        guard let timeoutSeconds = DurationText.parse(timeout), timeoutSeconds > 0 else { log.fail("--timeout \(timeout) is not a duration", code: 2) }
        if let digest { do { _ = try ContentDigest(parsing: digest) } catch { log.fail("\(error)", code: 2) } }
        let requested = URL(fileURLWithPath: output).standardizedFileURL
        let directory = requested.deletingLastPathComponent().resolvingSymlinksInPath()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            log.fail("\(directory.path) is not a directory", code: 2)
        }
        let path = directory.appendingPathComponent(requested.lastPathComponent).path
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard !isDirectory.boolValue else { log.fail("output path \(path) is a directory", code: 2) }
            guard overwrite else { log.fail("output path \(path) already exists (use --overwrite to replace it)", code: 2) }
        }
        let request = Dfdaemon_V2_DownloadPersistentCacheTaskRequest.with {
            $0.taskId = id
            $0.persistent = false
            $0.tag = tag ?? ""
            $0.application = application ?? ""
            $0.outputPath = transferFromDfdaemon ? nil : path
            $0.needPieceContent = transferFromDfdaemon
            $0.digest = digest
            $0.overwrite = overwrite
            $0.timeout = Google_Protobuf_Duration(.seconds(timeoutSeconds))
        }
        let progress = client.progress
        let writer = transferFromDfdaemon ? PieceFileWriter(output: URL(fileURLWithPath: path)) : nil
        // Pieces written here must all arrive; the task's layout says which there are.
        var pieceLength: UInt64 = PieceLayout.minPieceLength
        if transferFromDfdaemon {
            let task = await client.call { try await $0.statPersistentCacheTask(Dfdaemon_V2_StatPersistentCacheTaskRequest.with { $0.taskId = id }) }
            guard PieceLayout.allowedPieceLengths.contains(task.pieceLength) else { log.fail("the task's piece length \(task.pieceLength) is impossible", code: 1) }
            pieceLength = task.pieceLength
        }
        let layoutPieceLength = pieceLength
        let received = await client.call(pieces: transferFromDfdaemon) { daemon -> UInt64 in
            let call = try await daemon.downloadPersistentCacheTask(request, options: CallOptions(timeout: .seconds(timeoutSeconds)))
            var length: UInt64 = 0
            for try await r in call.responses {
                switch r.response {
                case .downloadPersistentCacheTaskStartedResponse(let s)?:
                    length = s.contentLength
                    let layout = try PieceLayout.checked(contentLength: s.contentLength, requestedPieceLength: layoutPieceLength)
                    try writer?.start(contentLength: s.contentLength, pieces: layout.pieces().map(\.number))
                    progress.started(total: s.contentLength)
                case .downloadPieceFinishedResponse(let p)?:
                    guard let piece = p.piece else { break }
                    try writer?.write(piece)
                    progress.piece(length: piece.length, source: .init(piece.trafficType))
                case nil: break
                }
            }
            try writer?.commit()
            progress.finish()
            return length
        }
        guard progress.done == received else {
            try? FileManager.default.removeItem(atPath: path)
            log.fail("received \(progress.done) of \(received) bytes", code: 1)
        }
    }
}
