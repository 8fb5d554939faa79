import ArgumentParser
import DragonflyCommon
import Foundation
import GeneratedAPI
import TransferCLI

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a file into the cluster's persistent cache; prints its task id.")

    @Argument(help: "The file to import (under the daemon's download.allowedOutputDirs).")
    var path: String
    @Option(help: "Name the task by this text instead of the file's content.")
    var contentForCalculatingTaskId: String?
    @Option(name: [.long, .customLong("replica-count")], help: "How many hosts keep a copy.")
    var persistentReplicaCount: UInt64 = 2
    @Option(help: "Piece length, 4 MiB to 64 MiB (default: chosen from the size).")
    var pieceLength: String?
    @Option(help: "Tag: a different tag makes a different task.")
    var tag: String?
    @Option(help: "Application: a different one makes a different task.")
    var application: String?
    @Option(help: "How long the cluster keeps the task: 5m to 7d.")
    var ttl = "1h"
    @Option(help: "Give up after this long.")
    var timeout = "30m"
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let log = client.log
        guard let ttlSeconds = DurationText.parse(ttl), (300...(7 * 86_400)).contains(ttlSeconds) else {
            log.fail("--ttl must be between 5m and 7d, not \(ttl)", code: 2)
        }
        guard let timeoutSeconds = DurationText.parse(timeout), timeoutSeconds > 0 else { log.fail("--timeout \(timeout) is not a duration", code: 2) }
        guard (1...1_000).contains(persistentReplicaCount) else { log.fail("--persistent-replica-count must be 1 to 1000", code: 2) }
        var pieceBytes: UInt64?
        if let pieceLength {
            guard let bytes = ByteSize.parse(pieceLength), PieceLayout.allowedPieceLengths.contains(bytes) else {
                log.fail("--piece-length must be 4 MiB to 64 MiB, not \(pieceLength)", code: 2)
            }
            pieceBytes = bytes
        }
        // The daemon reads only absolute paths without `..` or symlinked directories.
        let file = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory) else { log.fail("\(file.path) does not exist", code: 2) }
        guard !isDirectory.boolValue else { log.fail("\(file.path) is a directory", code: 2) }
        let request = Dfdaemon_V2_UploadPersistentCacheTaskRequest.with {
            $0.contentForCalculatingTaskId = contentForCalculatingTaskId
            $0.path = file.path
            $0.persistentReplicaCount = persistentReplicaCount
            $0.tag = tag
            $0.application = application
            $0.pieceLength = pieceBytes
            $0.ttl = Google_Protobuf_Duration(.seconds(ttlSeconds))
            $0.timeout = Google_Protobuf_Duration(.seconds(timeoutSeconds))
        }
        let task = await client.call { try await $0.uploadPersistentCacheTask(request, options: .init(timeout: .seconds(timeoutSeconds))) }
        log.info("imported \(file.path): \(ProgressReporter.size(task.contentLength)) in \(task.pieceCount) pieces, "
            + "\(task.persistentReplicaCount) replica(s) wanted, \(task.currentPersistentReplicaCount) now")
        print(task.id)
    }
}
