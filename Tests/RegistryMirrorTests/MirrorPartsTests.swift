import DragonflyCommon
import HTTPServing
import NIOHTTP1
import PeerDaemon
import DragonflyCommon
import Testing
@testable import RegistryMirror
@testable import RegistryClient

@Suite struct ByteRangeTests {
    @Test func rangesAsRFC9110Reads() {
        #expect(ByteRange.parse(nil, length: 100) == .whole)
        #expect(ByteRange.parse("bytes=0-9", length: 100) == .range(ByteRange(first: 0, last: 9)))
        #expect(ByteRange.parse("bytes=90-", length: 100) == .range(ByteRange(first: 90, last: 99)))
        #expect(ByteRange.parse("bytes=90-500", length: 100) == .range(ByteRange(first: 90, last: 99)))
        #expect(ByteRange.parse("bytes=-10", length: 100) == .range(ByteRange(first: 90, last: 99)))
        #expect(ByteRange.parse("bytes=-500", length: 100) == .range(ByteRange(first: 0, last: 99)))
        #expect(ByteRange.parse("bytes=100-", length: 100) == .unsatisfiable)
        #expect(ByteRange.parse("bytes=-0", length: 100) == .unsatisfiable)
        #expect(ByteRange.parse("bytes=5-2", length: 100) == .whole, "invalid ranges are ignored")
        #expect(ByteRange.parse("bytes=0-1,5-6", length: 100) == .whole, "several ranges get the whole body")
        #expect(ByteRange.parse("items=0-1", length: 100) == .whole)
    }
}

@Suite struct AuthChallengeTests {
    @Test func parsesBearerWithQuotedCommas() throws {
        let c = try #require(AuthChallenge(#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#))
        #expect(c.scheme == "bearer")
        #expect(c.parameters == ["realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull,push"])
    }

    @Test func parsesBasicAndBareTokens() throws {
        #expect(try #require(AuthChallenge(#"Basic realm="Registry Realm""#)).parameters == ["realm": "Registry Realm"])
        #expect(try #require(AuthChallenge("Basic")).scheme == "basic")
        #expect(AuthChallenge("  ") == nil)
        #expect(AuthChallenge.parseParameters(#"a=1, b="x\"y""#) == ["a": "1", "b": #"x"y"#])
    }
}

@Suite struct UpstreamResolverTests {
    func request(_ uri: String, headers: [(String, String)] = []) -> HTTPRequest {
        HTTPRequest(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers)))
    }

    var config: ProxyConfig {
        var c = ProxyConfig()
        c.registryMirrorURL = "http://127.0.0.1:5000"
        var r = ProxyConfig.Registry(url: "https://private.example:8443")
        r.insecure = true
        c.registries = [r]
        return c
    }

    @Test func defaultUpstreamAndNsRemoved() throws {
        let t = try UpstreamResolver(config: config).resolve(request("/v2/lib/app/blobs/sha256:ab?ns=127.0.0.1:5000&x=1"))
        #expect(t.url == "http://127.0.0.1:5000/v2/lib/app/blobs/sha256:ab?x=1")
        #expect(t.base == "http://127.0.0.1:5000")
    }

    @Test func nsNamesAConfiguredRegistryWithItsSchemeAndTrust() throws {
        let t = try UpstreamResolver(config: config).resolve(request("/v2/a/manifests/v1?ns=private.example:8443"))
        #expect(t.url == "https://private.example:8443/v2/a/manifests/v1")
        #expect(t.insecure)
        #expect(t.registry?.host == "private.example:8443")
    }

    /// Naming a configured HTTPS registry as `http://` (header or absolute URI) must not
    /// send its credentials in the clear: over another scheme it is not that registry.
    @Test func aConfiguredRegistryOverAnotherSchemeIsNotThatRegistry() throws {
        for r in [request("/v2/a/manifests/v1", headers: [("X-Dragonfly-Registry", "http://private.example:8443")]),
                  request("http://private.example:8443/v2/a/manifests/v1")] {
            #expect(throws: MirrorRefusal.self) { try UpstreamResolver(config: config).resolve(r) }
            var dynamic = config
            dynamic.dynamic = true
            let t = try UpstreamResolver(config: dynamic).resolve(r)
            #expect(t.base == "http://private.example:8443")
            #expect(t.registry == nil, "credentials and trust stay with https://private.example:8443")
            #expect(!t.insecure)
        }
        let same = try UpstreamResolver(config: config).resolve(
            request("/v2/a/manifests/v1", headers: [("X-Dragonfly-Registry", "HTTPS://private.example:8443")]))
        #expect(same.registry?.host == "private.example:8443")
    }

    @Test func unknownRegistriesAreRefusedUnlessDynamic() throws {
        #expect(throws: MirrorRefusal.self) {
            try UpstreamResolver(config: config).resolve(request("/v2/a/manifests/v1?ns=evil.example"))
        }
        #expect(throws: MirrorRefusal.self) {
            try UpstreamResolver(config: config).resolve(request("/v2/a/manifests/v1", headers: [("X-Dragonfly-Registry", "https://evil.example")]))
        }
        #expect(throws: MirrorRefusal.self) { try UpstreamResolver(config: config).resolve(request("http://evil.example/file")) }
        var dynamic = config
        dynamic.dynamic = true
        let t = try UpstreamResolver(config: dynamic).resolve(request("/v2/library/busybox/manifests/1?ns=docker.io"))
        #expect(t.url == "https://registry-1.docker.io/v2/library/busybox/manifests/1")
        let h = try UpstreamResolver(config: dynamic).resolve(request("/v2/a/tags/list", headers: [("X-Dragonfly-Registry", "http://other:80")]))
        #expect(h.url == "http://other:80/v2/a/tags/list")
    }

    @Test func aDockerHubMirrorTakesContainerdsDockerIONamespaceWithoutDynamic() throws {
        var hub = ProxyConfig()
        hub.registryMirrorURL = "https://index.docker.io"
        let t = try UpstreamResolver(config: hub).resolve(request("/v2/library/busybox/manifests/1?ns=docker.io"))
        #expect(t.url == "https://registry-1.docker.io/v2/library/busybox/manifests/1")
        #expect(throws: MirrorRefusal.self) {
            try UpstreamResolver(config: hub).resolve(request("/v2/a/manifests/v1?ns=quay.io"))
        }
    }

    @Test func onlyTheRegistryAPIIsMirrored() {
        #expect(throws: MirrorRefusal.self) { try UpstreamResolver(config: config).resolve(request("/etc/passwd")) }
    }

    @Test func repositoryNamesForTokenScopes() {
        #expect(UpstreamResolver.repository(ofPath: "/v2/library/busybox/blobs/sha256:ab") == "library/busybox")
        #expect(UpstreamResolver.repository(ofPath: "/v2/a/b/c/manifests/latest") == "a/b/c")
        #expect(UpstreamResolver.repository(ofPath: "/v2/") == nil)
    }

    @Test func blobDigestsMustBeWellFormed() {
        let hex = String(repeating: "a", count: 64)
        #expect(UpstreamResolver.blobDigest(inPath: "/v2/x/blobs/sha256:\(hex)") == "sha256:\(hex)")
        #expect(UpstreamResolver.blobDigest(inPath: "/v2/x/blobs/sha256:\(hex.dropLast())") == nil)
        #expect(UpstreamResolver.blobDigest(inPath: "/v2/x/blobs/sha256:\(hex.uppercased())") == nil)
        #expect(UpstreamResolver.blobDigest(inPath: "/v2/x/manifests/sha256:\(hex)") == nil)
    }
}

@Suite struct ImageReferenceTests {
    @Test func manifestURLsAndReferences() throws {
        let u = try ImageReference.parse("http://127.0.0.1:5000/v2/team/app/manifests/v1")
        #expect(u == ImageReference(base: "http://127.0.0.1:5000", repository: "team/app", reference: "v1"))
        #expect(u.blobURL("sha256:ab") == "http://127.0.0.1:5000/v2/team/app/blobs/sha256:ab")
        #expect(try ImageReference.parse("alpine") == ImageReference(base: "https://registry-1.docker.io", repository: "library/alpine", reference: "latest"))
        #expect(try ImageReference.parse("docker.io/org/app:1.2").repository == "org/app")
        #expect(try ImageReference.parse("harbor.example.com/production/myapp:v2.0.0")
            == ImageReference(base: "https://harbor.example.com", repository: "production/myapp", reference: "v2.0.0"))
        let pinned = try ImageReference.parse("localhost:5000/x@sha256:" + String(repeating: "a", count: 64))
        #expect(pinned.base == "https://localhost:5000" && pinned.reference.hasPrefix("sha256:"))
        #expect(throws: RegistryError.self) { try ImageReference.parse("https://example.com/not/a/manifest") }
        #expect(throws: RegistryError.self) { try ImageReference.parse("UPPER/case:tag") }
    }
}

@Suite struct RegistryTokenLifetimeTests {
    @Test(arguments: [(300, 300), (0, 60), (-9_223_372_036_854_775_800, 60), (Int.max, 86_400), (59, 60)])
    func expiresInIsHeldToTheSpecsRange(_ said: Int, _ kept: Int) {
        #expect(RegistryToken.lifetime(said) == kept)
    }

    @Test func aMissingOrNonNumericExpiresInMeansTheDefault() {
        #expect(RegistryToken.lifetime(nil) == 60)
        #expect(RegistryToken.lifetime("300") == 60)
    }
}
