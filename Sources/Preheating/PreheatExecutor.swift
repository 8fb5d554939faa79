import AsyncHTTPClient
import DragonflyCommon
import Foundation
import GeneratedAPI
import Logging
import RegistryClient
import RPCCore
import RPCTransport

/// Carries a preheat out: resolves an image to its blobs, asks each chosen dfdaemon to
/// download each item (`DfdaemonUpload.DownloadTask`, so the task lands in its cache as a
/// later pull will name it), and asks them which items they hold (`StatTask`).
public final class PreheatExecutor: Sendable {
    let peers: RPCChannelPool
    let http: HTTPClient
    let logger: Logger
    /// Manifests and tokens are never fetched from link-local or cloud-metadata addresses,
    /// where a preheat URL could otherwise read instance credentials.
    let originPolicy = OriginAddressPolicy()

    /// `tls` is for calls to dfdaemons that serve TLS.
    public init(tls: TLSConfiguration? = nil, logger: Logger) {
        peers = RPCChannelPool { config in
            config.connectTimeout = .seconds(5)
            if case .tcp = config.target { config.tls = tls }
        }
        // Redirects are not followed: every URL fetched passes `originPolicy`.
        var config = HTTPClient.Configuration(redirectConfiguration: .disallow)
        config.timeout = .init(connect: .seconds(10), read: .seconds(60))
        http = HTTPClient(configuration: config)
        self.logger = logger
    }

    public func shutdown() async {
        try? await http.shutdown()
        await peers.closeAll()
    }

    /// Why `url` may not be fetched, if it may not.
    public static func refusal(of url: String, under policy: OriginAddressPolicy) async -> String? {
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = c.host, !host.isEmpty else { return "not an http(s) URL with a host" }
        return await policy.refusal(forHost: host)
    }

    /// An image's blobs for `platform`, and the registry authorization the peers need to
    /// fetch them (a bearer token got with the credentials, or Basic).
    public func resolveImage(_ url: String, platform: String, username: String?, password: String?,
                             headers: [String: String]) async throws -> (items: [PreheatPlan.Item], authorization: String?) {
        let policy = originPolicy
        let resolver = ImageResolver(client: http, check: { url in await Self.refusal(of: url, under: policy) })
        let image = try ImageReference.parse(url)
        let resolved = try await resolver.resolve(image, platform: platform, username: username, password: password, headers: headers)
        return (resolved.blobs.map { PreheatPlan.Item(url: $0.url, digest: $0.digest) }, resolved.authorization)
    }

    /// One item on one peer.
    public struct Outcome: Sendable, Encodable, Equatable {
        public var url: String
        public var peer: String
        public var hostname: String
        public var task_id: String
        public var state: String
        public var error: String?

        public init(url: String, peer: String, hostname: String, task_id: String, state: String, error: String? = nil) {
            self.url = url
            self.peer = peer
            self.hostname = hostname
            self.task_id = task_id
            self.state = state
            self.error = error
        }
    }

    /// Runs every (item, peer) download of `plan` on `targets`, `concurrentTaskCount` at a
    /// time; `progress` hears each outcome as it lands.
    public func run(_ plan: PreheatPlan, on targets: [PreheatTarget],
                    progress: @escaping @Sendable (Outcome) async -> Void = { _ in }) async -> [Outcome] {
        let work = plan.work(on: targets)
        return await withTaskGroup(of: Outcome.self) { group in
            var results: [Outcome] = []
            var next = 0
            func launch() {
                guard next < work.count else { return }
                let w = work[next]
                next += 1
                group.addTask { await self.download(plan.request(for: w.item), on: w.target, timeout: plan.timeout) }
            }
            for _ in 0..<plan.concurrentTaskCount { launch() }
            while let outcome = await group.next() {
                results.append(outcome)
                await progress(outcome)
                launch()
            }
            return results.sorted { ($0.url, $0.peer) < ($1.url, $1.peer) }
        }
    }

    func download(_ download: Common_V2_Download, on target: PreheatTarget, timeout: Duration) async -> Outcome {
        var outcome = Outcome(url: download.url, peer: target.address, hostname: target.hostname,
                              task_id: (try? PreheatPlan.taskID(of: download)) ?? "", state: "FAILURE", error: nil)
        do {
            let client = Dfdaemon_V2_DfdaemonUploadClient(RPCClient(transport: try peers.channel(target.address)))
            var request = Dfdaemon_V2_DownloadTaskRequest()
            request.download = download
            let call = try await client.downloadTask(request, options: CallOptions(timeout: timeout))
            for try await message in call.responses where !message.taskId.isEmpty {
                outcome.task_id = message.taskId
            }
            outcome.state = "SUCCESS"
        } catch {
            outcome.error = "\(error)"
            logger.warning("preheat of \(LogRedaction.url(download.url)) on \(target.address) failed: \(error)")
        }
        return outcome
    }

    /// For each target, which items it holds complete (a task it does not know counts as
    /// not held; a peer that does not answer holds nothing).
    public func cached(_ plan: PreheatPlan, on targets: [PreheatTarget]) async -> [(target: PreheatTarget, finished: [PreheatPlan.Item: Bool])] {
        await withTaskGroup(of: (PreheatTarget, [PreheatPlan.Item: Bool]).self) { group in
            for target in targets {
                group.addTask {
                    var finished: [PreheatPlan.Item: Bool] = [:]
                    let client = try? Dfdaemon_V2_DfdaemonUploadClient(RPCClient(transport: self.peers.channel(target.address)))
                    for item in plan.items {
                        guard let client, let id = try? PreheatPlan.taskID(of: plan.request(for: item)) else {
                            finished[item] = false
                            continue
                        }
                        var request = Dfdaemon_V2_StatTaskRequest()
                        request.taskId = id
                        let task = try? await client.statTask(request, options: CallOptions(timeout: .seconds(10)))
                        finished[item] = task?.state == "Succeeded"
                    }
                    return (target, finished)
                }
            }
            var out: [(target: PreheatTarget, finished: [PreheatPlan.Item: Bool])] = []
            for await (target, finished) in group { out.append((target, finished)) }
            return out.sorted { $0.target < $1.target }
        }
    }
}

extension PreheatPlan {
    /// The task id a dfdaemon gives `download`, by the rules it uses (content to hash, a
    /// blob's digest when asked, else the URL and the fields that make a different task).
    public static func taskID(of download: Common_V2_Download) throws -> String {
        if let content = download.contentForCalculatingTaskId { return TaskID.content(content) }
        if download.enableTaskIdBasedBlobDigest, let id = TaskID.blobDigest(url: download.url) { return id }
        return try TaskID.standard(url: download.url, tag: download.tag, application: download.application,
                                   pieceLength: download.pieceLength, filteredQueryParams: download.filteredQueryParams)
    }
}
