import DragonflyCommon
import HTTPServing
import NIOCore
import NIOEmbedded
import NIOHTTP1
import MirrorRouting
import PeerConfig

/// An HTTP/1.1 request as the dfdaemon's port parses it (NIO's decoder, as HTTPServing
/// configures it), then everything the mirror reads from it before going upstream:
/// upstream choice, Range, blob digest and repository.
enum HTTP1Target {
    static let resolver: UpstreamResolver = {
        var config = ProxyConfig()
        config.registryMirrorURL = "http://127.0.0.1:5000"
        config.dynamic = true
        var registry = ProxyConfig.Registry(url: "https://registry.example")
        registry.alias = "alias.example"
        config.registries = [registry]
        return UpstreamResolver(config: config)
    }()

    static func run(_ input: UnsafeRawBufferPointer) {
        let channel = EmbeddedChannel()
        do {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            var buffer = channel.allocator.buffer(capacity: input.count)
            buffer.writeBytes(input)
            try channel.writeInbound(buffer)
        } catch {}
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            guard case .head(let head) = part else { continue }
            let request = HTTPRequest(head: head)
            _ = try? resolver.resolve(request)
            _ = ByteRange.parse(request.headers.first(name: "Range"), length: 1 << 30)
            _ = ByteRange.parse(request.headers.first(name: "Range"), length: 0)
            _ = UpstreamResolver.blobDigest(inPath: request.path)
            _ = UpstreamResolver.repository(ofPath: request.path)
            _ = request.queryItems
        }
        while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }
}
