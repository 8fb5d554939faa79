import GeneratedAPI
import Preheating
import RPCCore

/// The four preheat methods: requests checked and bounded, turned into a `PreheatPlan`.
extension SchedulerRPCService {
    public func preheatImage(_ request: Scheduler_V2_PreheatImageRequest, context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        let preheats = try enabledPreheats(context, "PreheatImage")
        let shared = try PreheatRequestFields(url: request.url, isImage: true, header: request.header, tag: request.tag,
                                              application: request.application, filteredQueryParams: request.filteredQueryParams,
                                              pieceLength: request.pieceLength, timeout: request.timeout)
        let (items, authorization) = try await resolve(preheats, request.url, platform: request.platform, username: request.username,
                                                       password: request.password, headers: request.header)
        var download = shared.download
        if let authorization { download.requestHeader["Authorization"] = authorization }
        download.enableTaskIdBasedBlobDigest = request.enableTaskIdBasedBlobDigest
        download.priority = request.priority
        let plan = PreheatPlan(items: items, download: download, scope: try scope(request.scope),
                               selection: try selection(request.ips, request.count, request.percentage),
                               concurrentTaskCount: Self.bounded(request.concurrentTaskCount, default: 8), timeout: shared.timeout)
        try await preheats.preheat(plan)
        return Google_Protobuf_Empty()
    }

    public func preheatFile(_ request: Scheduler_V2_PreheatFileRequest, context: RPCServerContext) async throws -> Google_Protobuf_Empty {
        let preheats = try enabledPreheats(context, "PreheatFile")
        try refuseBackends(request.objectStorage != nil, request.hdfs != nil)
        let shared = try PreheatRequestFields(url: request.url, isImage: false, header: request.header, tag: request.tag,
                                              application: request.application, filteredQueryParams: request.filteredQueryParams,
                                              pieceLength: request.pieceLength, timeout: request.timeout)
        var download = shared.download
        download.priority = request.priority
        let plan = PreheatPlan(items: [PreheatPlan.Item(url: request.url)], download: download, scope: try scope(request.scope),
                               selection: try selection(request.ips, request.count, request.percentage),
                               concurrentTaskCount: Self.bounded(request.concurrentTaskCount, default: 8), timeout: shared.timeout)
        try await preheats.preheat(plan)
        return Google_Protobuf_Empty()
    }

    public func statImage(_ request: Scheduler_V2_StatImageRequest, context: RPCServerContext) async throws -> Scheduler_V2_StatImageResponse {
        let preheats = try enabledPreheats(context, "StatImage")
        let shared = try PreheatRequestFields(url: request.url, isImage: true, header: request.header, tag: request.tag,
                                              application: request.application, filteredQueryParams: request.filteredQueryParams,
                                              pieceLength: request.pieceLength, timeout: request.timeout)
        let (items, _) = try await resolve(preheats, request.url, platform: request.platform, username: request.username,
                                           password: request.password, headers: request.header)
        var download = shared.download
        download.enableTaskIdBasedBlobDigest = request.enableTaskIdBasedBlobDigest
        // Every peer by default: the question is where the image is, not where it should go.
        let plan = PreheatPlan(items: items, download: download, scope: try scope(request.scope.isEmpty ? "all_peers" : request.scope),
                               selection: PeerSelection(), concurrentTaskCount: 1, timeout: shared.timeout)
        var response = Scheduler_V2_StatImageResponse()
        var image = Scheduler_V2_Image()
        image.layers = items.map { item in
            var layer = Scheduler_V2_Layer()
            layer.url = item.url
            return layer
        }
        response.image = image
        response.peers = await preheats.survey(plan).map { entry in
            var peer = Scheduler_V2_PeerImage()
            peer.ip = entry.target.ip
            peer.hostname = entry.target.hostname
            peer.cachedLayers = items.filter { entry.finished[$0] == true }.map { item in
                var layer = Scheduler_V2_Layer()
                layer.url = item.url
                layer.isFinished = true
                return layer
            }
            return peer
        }
        return response
    }

    public func statFile(_ request: Scheduler_V2_StatFileRequest, context: RPCServerContext) async throws -> Scheduler_V2_StatFileResponse {
        let preheats = try enabledPreheats(context, "StatFile")
        try refuseBackends(request.objectStorage != nil, request.hdfs != nil)
        let shared = try PreheatRequestFields(url: request.url, isImage: false, header: request.header, tag: request.tag,
                                              application: request.application, filteredQueryParams: request.filteredQueryParams,
                                              pieceLength: request.pieceLength, timeout: request.timeout)
        let item = PreheatPlan.Item(url: request.url)
        let plan = PreheatPlan(items: [item], download: shared.download, scope: .allPeers, selection: PeerSelection(),
                               concurrentTaskCount: 1, timeout: shared.timeout)
        var response = Scheduler_V2_StatFileResponse()
        response.peers = await preheats.survey(plan).map { entry in
            var peer = Scheduler_V2_PeerFile()
            peer.ip = entry.target.ip
            peer.hostname = entry.target.hostname
            if entry.finished[item] == true {
                var file = Scheduler_V2_File()
                file.url = item.url
                file.isFinished = true
                peer.cachedFiles = [file]
            }
            return peer
        }
        return response
    }

    func enabledPreheats(_ context: RPCServerContext, _ method: String) throws -> SchedulerPreheat {
        guard let preheats else { throw RPCError(code: .unimplemented, message: "\(method) is not served by this scheduler") }
        try preheats.access.authorize(context, method)
        return preheats
    }

    func resolve(_ preheats: SchedulerPreheat, _ url: String, platform: String?, username: String?, password: String?,
                 headers: [String: String]) async throws -> (items: [PreheatPlan.Item], authorization: String?) {
        do {
            return try await preheats.executor.resolveImage(url, platform: platform.flatMap { $0.isEmpty ? nil : $0 } ?? "linux/amd64",
                                                            username: username, password: password, headers: headers)
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(code: .failedPrecondition, message: "resolving the image \(url) failed: \(error)")
        }
    }

    func scope(_ text: String) throws -> PreheatPlan.Scope {
        guard let scope = PreheatPlan.Scope(rawValue: text.isEmpty ? "single_seed_peer" : text) else {
            throw RPCError(code: .invalidArgument, message: "scope must be single_seed_peer, all_seed_peers or all_peers")
        }
        return scope
    }

    func selection(_ ips: [String], _ count: UInt32?, _ percentage: UInt32?) throws -> PeerSelection {
        guard ips.count <= 10_000 else { throw RPCError(code: .invalidArgument, message: "at most 10000 ips") }
        if let count, count < 1 { throw RPCError(code: .invalidArgument, message: "count must be at least 1") }
        if let percentage, !(1...100).contains(percentage) { throw RPCError(code: .invalidArgument, message: "percentage must be 1-100") }
        return PeerSelection(ips: ips, count: count.map { Int($0) }, percentage: percentage.map { Double($0) })
    }

    func refuseBackends(_ objectStorage: Bool, _ hdfs: Bool) throws {
        if objectStorage || hdfs {
            throw RPCError(code: .invalidArgument, message: "object storage and HDFS origins are not supported; preheat an http(s) URL")
        }
    }

    static func bounded(_ value: Int64?, default fallback: Int) -> Int {
        guard let value else { return fallback }
        return Int(min(64, max(1, value)))
    }
}

/// The fields every preheat and stat request shares, checked and bounded.
struct PreheatRequestFields {
    var download = Common_V2_Download()
    var timeout: Duration

    init(url: String, isImage: Bool, header: [String: String], tag: String?, application: String?, filteredQueryParams: [String],
         pieceLength: UInt64?, timeout: Google_Protobuf_Duration?) throws {
        if let refusal = PreheatChecks.refusal(url: url, isImage: isImage) { throw RPCError(code: .invalidArgument, message: refusal) }
        if let refusal = PreheatChecks.refusal(headers: header) { throw RPCError(code: .invalidArgument, message: refusal) }
        guard filteredQueryParams.count <= 100, (tag?.utf8.count ?? 0) <= 1024, (application?.utf8.count ?? 0) <= 1024 else {
            throw RPCError(code: .invalidArgument, message: "tag, application or filtered_query_params too long")
        }
        download.tag = tag
        download.application = application
        download.filteredQueryParams = filteredQueryParams
        download.requestHeader = header
        download.pieceLength = pieceLength
        // Bounded before any arithmetic: 1 s to a day, 30 minutes when unset.
        let seconds = timeout.map { min(86_400, max(1, $0.seconds)) } ?? 1800
        self.timeout = .seconds(seconds)
    }
}
