import DragonflyCommon
import GeneratedAPI
import Preheating
import RPCCore

/// A job's preheat handed to a cluster's scheduler (`PreheatImage` per image,
/// `PreheatFile` per file, as Dragonfly 2.4's manager does): the scheduler knows the
/// cluster's peers, picks those the scope reaches and has them fetch. The manager presents
/// the cluster's registration secret, which the scheduler requires of preheat callers.
struct SchedulerPreheatCall: Sendable {
    let args: PreheatArguments
    let secret: String?
    /// The share of peers as the scheduler takes it: whole per cent, rounded up.
    var percentage: UInt32? { args.percentage.map { UInt32(min(100, max(1, $0.rounded(.up)))) } }

    /// Runs every URL of the job on `client`'s scheduler; throws the first refusal or failure.
    func run(_ client: Scheduler_V2_SchedulerClient) async throws {
        var options = CallOptions(timeout: args.timeout + .seconds(30))
        if let secret { options.metadata.add("x-dragonfly-registration-secret", secret) }
        for url in args.urls {
            switch args.kind {
            case .image: _ = try await client.preheatImage(imageRequest(url), options: options)
            case .file: _ = try await client.preheatFile(fileRequest(url), options: options)
            }
        }
    }

    func imageRequest(_ url: String) -> Scheduler_V2_PreheatImageRequest {
        var r = Scheduler_V2_PreheatImageRequest()
        r.url = url
        r.pieceLength = args.pieceLength
        r.tag = args.tag
        r.application = args.application
        r.filteredQueryParams = args.filteredQueryParams
        r.header = args.headers
        r.username = args.username
        r.password = args.password
        r.platform = args.platform.isEmpty ? nil : args.platform
        r.scope = args.scope.rawValue
        r.ips = args.ips
        r.percentage = percentage
        r.count = args.count.map { UInt32(clamping: $0) }
        r.concurrentTaskCount = Int64(args.concurrentTaskCount)
        r.timeout = Google_Protobuf_Duration(args.timeout)
        r.enableTaskIdBasedBlobDigest = args.taskIDBasedBlobDigest
        return r
    }

    func fileRequest(_ url: String) -> Scheduler_V2_PreheatFileRequest {
        var r = Scheduler_V2_PreheatFileRequest()
        r.url = url
        r.pieceLength = args.pieceLength
        r.tag = args.tag
        r.application = args.application
        r.filteredQueryParams = args.filteredQueryParams
        r.header = args.headers
        r.scope = args.scope.rawValue
        r.ips = args.ips
        r.percentage = percentage
        r.count = args.count.map { UInt32(clamping: $0) }
        r.concurrentTaskCount = Int64(args.concurrentTaskCount)
        r.timeout = Google_Protobuf_Duration(args.timeout)
        return r
    }
}
