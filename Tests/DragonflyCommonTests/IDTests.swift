import Testing
@testable import DragonflyCommon

/// Vectors from Dragonfly's Rust client (dragonfly-client-util id_generator tests).
@Suite struct TaskIDTests {
    struct Vector: Sendable, CustomStringConvertible {
        var url: String
        var pieceLength: UInt64?
        var tag: String?
        var application: String?
        var filtered: [String]
        var revision: String?
        var expected: String
        var description: String { "\(url) tag=\(tag ?? "-") app=\(application ?? "-") pl=\(pieceLength.map(String.init) ?? "-")" }
    }

    static let vectors: [Vector] = [
        Vector(url: "https://example.com", pieceLength: 1024, tag: "foo", application: "bar", filtered: [], revision: "v1.0",
               expected: "5844f27a257287e9b734256bb25603d8005422ced8c0377f15063ec11963b25f"),
        Vector(url: "https://example.com", tag: "foo", application: "bar", filtered: [],
               expected: "06408fbf247ddaca478f8cb9565fe5591c28efd0994b8fea80a6a87d3203c5ca"),
        Vector(url: "https://example.com", tag: "foo", filtered: [],
               expected: "3c3f230ef9f191dd2821510346a7bc138e4894bee9aee184ba250a3040701d2a"),
        Vector(url: "https://example.com", application: "bar", filtered: [],
               expected: "c9f9261b7305c24371244f9f149f5d4589ed601348fdf22d7f6f4b10658fdba2"),
        Vector(url: "https://example.com", pieceLength: 1024, filtered: [],
               expected: "9f7c9aafbc6f30f8f41a96ca77eeae80c5b60964b3034b0ee43ccf7b2f9e52b8"),
        Vector(url: "https://example.com?foo=foo&bar=bar", filtered: ["foo", "bar"],
               expected: "457b4328cde278e422c9e243f7bfd1e97f511fec43a80f535cf6b0ef6b086776"),
        Vector(url: "https://example.com/file.txt?z=9&b=2&a=1", tag: "foo", application: "bar", filtered: ["z"],
               expected: "8b3f6e9b9b8fe20903bced565cfd1d0aaef354a4c17573f0c2c1979210443f9d"),
        Vector(url: "https://example.com/file.txt?b=2&a=1&b=1", filtered: ["c"],
               expected: "7c8801d0596be5e8f9449d5c4af23866c72fe5205119c0e5912981f3b16a37aa"),
        Vector(url: "https://example.com/file.txt?k=a b&m=x*y&n=c~d", pieceLength: 1024, filtered: ["none"],
               expected: "6196a6846023f6d3c1e4d30f6c86f3d4186e4c664a33e5692b0e04e49b26a9af"),
        Vector(url: "https://example.com/file.txt?a=1&b=2", tag: "foo", filtered: ["a", "b"],
               expected: "c8f4b41117329d54af920010394f6f607bac707e933ab2f18d372e3dd4c7fcb3"),
        Vector(url: "https://example.com/file.txt?b=2&a=1", filtered: [],
               expected: "980ee327518ccc5a7c30703e1a2232e8ba9047b39431f940636c85b6146f8b9a"),
        Vector(url: "https://example.com", filtered: [], revision: "v1.0",
               expected: "b171331534b80e0bf91da38ebbfcdbf4d177898f4b9beac44f14733e3f004d4e"),
    ]

    @Test(arguments: vectors)
    func matchesTheRustClient(_ v: Vector) throws {
        let id = try TaskID.standard(url: v.url, tag: v.tag, application: v.application, revision: v.revision,
                                     pieceLength: v.pieceLength, filteredQueryParams: v.filtered)
        #expect(id == v.expected)
    }

    @Test(arguments: [
        ("https://example.com/file.txt?z=9&b=2&a=1", ["z"], "https://example.com/file.txt?a=1&b=2"),
        ("https://example.com/file.txt?b=2&a=1&b=1", ["c"], "https://example.com/file.txt?a=1&b=2&b=1"),
        ("https://example.com?foo=foo", ["foo"], "https://example.com"),
        ("https://example.com/file.txt?k=a b&m=x*y&n=c~d", ["none"], "https://example.com/file.txt?k=a+b&m=x%2Ay&n=c~d"),
        ("http://www.xx.yy/path?u=f&x=y&m=z&x=s#size", ["x", "m"], "http://www.xx.yy/path?u=f#size"),
        ("http://www.xx.yy/path?u=f&x=y&m=z&x=s#size", [], "http://www.xx.yy/path?u=f&x=y&m=z&x=s#size"),
        ("https://example.com/file.txt?a=1;x&b=2", ["none"], "https://example.com/file.txt?b=2"),
    ])
    func filtersQueryParameters(_ url: String, _ filtered: [String], _ expected: String) throws {
        #expect(try URLFilter.filter(url, removing: filtered) == expected)
    }

    @Test func unparsableURLIsAnError() {
        #expect(throws: ConfigError.self) { try URLFilter.filter(":error_url", removing: ["x"]) }
    }

    @Test(arguments: [("a b", "a+b"), ("x*y", "x%2Ay"), ("c~d", "c~d"), ("1+1", "1%2B1"), ("中", "%E4%B8%AD")])
    func escapesLikeGo(_ raw: String, _ escaped: String) {
        #expect(URLFilter.queryEscape(raw) == escaped)
    }

    @Test func blobURLsUseTheirDigest() {
        let hex = "b2c366cce7e68013d5441c6326d5a3e1b12aeb5ed58564d0fd3fa089bc29cb6e"
        #expect(TaskID.blobDigest(url: "http://registry.example.com/v2/library/ubuntu/blobs/sha256:\(hex)") == hex)
        #expect(TaskID.blobDigest(url: "http://localhost:5000/v2/myrepo/blobs/sha256:\(hex)?ns=docker.io") == hex)
        #expect(TaskID.blobDigest(url: "https://example.com/file.txt") == nil)
        #expect(TaskID.blobDigest(url: "http://r/v2/x/blobs/sha256:abc") == nil)
        #expect(TaskID.blobDigest(url: "http://r/v2/x/blobs/md5:8a04994a666b4e4b20a2fd9e5a44f44c") == nil)
    }

    @Test func hostAndPeerIDsPutTheIPFirst() {
        #expect(PeerIdentity.hostID(ip: "127.0.0.1", hostname: "localhost") == "127.0.0.1-localhost")
        #expect(PeerIdentity.hostID(ip: "127.0.0.1", hostname: "localhost", seed: true) == "127.0.0.1-localhost-seed")
        let peer = PeerIdentity.peerID(ip: "127.0.0.1", hostname: "localhost")
        #expect(peer.hasPrefix("127.0.0.1-localhost-"))
        #expect(peer.count == "127.0.0.1-localhost-".count + 36)
    }
}

@Suite struct PieceLayoutTests {
    static let mib: UInt64 = 1 << 20
    static let gib: UInt64 = 1 << 30

    /// (content length, piece length, piece count), from the Rust client's tests.
    static let cases: [(UInt64, UInt64, UInt32)] = [
        (0, 4 * mib, 0), (1, 4 * mib, 1), (gib, 4 * mib, 256), (2 * gib, 8 * mib, 256),
        (2 * gib + 1, 8 * mib, 257), (4 * gib, 16 * mib, 256), (10 * gib, 32 * mib, 320), (16 * gib, 64 * mib, 256),
        (100 * gib, 64 * mib, 1600), (2_097_152_000, 4 * mib, 500),
    ]

    @Test(arguments: cases)
    func pieceLengthFollowsDragonflysRule(_ content: UInt64, _ piece: UInt64, _ count: UInt32) {
        let layout = PieceLayout(contentLength: content)
        #expect(layout.pieceLength == piece)
        #expect(layout.pieceCount == count)
    }

    @Test func lastPieceIsShortAndRangesSelectPieces() {
        let layout = PieceLayout(contentLength: 5000, pieceLength: 1000)
        #expect(layout.pieceCount == 5)
        #expect(layout.piece(4) == .init(number: 4, offset: 4000, length: 1000))
        #expect(PieceLayout(contentLength: 101, pieceLength: 10).piece(10) == .init(number: 10, offset: 100, length: 1))
        #expect(layout.piece(5) == nil)
        #expect(layout.pieces(in: (start: 1500, length: 2000)).map(\.number) == [1, 2, 3])
        #expect(layout.pieces(in: (start: 0, length: 1)).map(\.number) == [0])
        #expect(layout.pieces(in: (start: 0, length: 0)).isEmpty)
    }
}

@Suite struct DigestTests {
    let content = Array("test content".utf8)

    @Test func computesWhatTheRustClientWrites() {
        #expect(PieceDigest.of(content) == "crc32:1475635037")
        #expect(PieceDigest.of(Array("hello".utf8)) == "crc32:907060870")
        #expect(ContentDigest.compute(.sha256, of: content).description
                == "sha256:6ae8a75555209fd6c44157c0aed8016e763ff435a19cf186f76863140143ff72")
        #expect(ContentDigest.compute(.sha512, of: content).encoded.hasPrefix("0cbf4caef38047bba9a24e621a961484"))
        #expect(ContentDigest.compute(.crc32, of: content).encoded == "1475635037")
    }

    @Test func streamingMatchesOneShot() {
        let d = StreamingDigest(algorithm: "sha256")
        d?.update(Array("test ".utf8))
        d?.update(Array("content".utf8))
        #expect(d?.finalizeHex() == Hashing.sha256Hex(content))
    }

    @Test(arguments: ["sha256", "md5:abc", "blake3:" + String(repeating: "a", count: 64), "sha256:abc", "crc32:123",
                      // The right length, but not the digest's alphabet: a path, uppercase, a sign.
                      "sha256:../../victim/" + String(repeating: "a", count: 51), "sha256:" + String(repeating: "A", count: 64),
                      "sha512:" + String(repeating: "g", count: 128), "crc32:-147563503", "crc32:14756350/3"])
    func malformedDigestsAreRejected(_ text: String) {
        #expect(throws: ConfigError.self) { try ContentDigest(parsing: text) }
    }

    @Test func wellFormedDigestsParse() throws {
        let d = try ContentDigest(parsing: "sha256:" + String(repeating: "a", count: 64))
        #expect(d.algorithm == .sha256)
        #expect(try ContentDigest(parsing: "crc32:1475635037").encoded == "1475635037")
    }

    @Test func aBlobURLWhoseDigestIsAPathNamesNoTask() {
        let url = "http://origin/v2/x/blobs/sha256:../../victim/" + String(repeating: "a", count: 51)
        #expect(TaskID.blobDigest(url: url) == nil)
        #expect(TaskID.blobDigest(url: "http://origin/v2/x/blobs/sha256:" + String(repeating: "0f", count: 32)) == String(repeating: "0f", count: 32))
    }

    @Test(arguments: [("", false), (String(repeating: "a", count: 64), true), (String(repeating: "a", count: 129), false),
                      ("../x", false), ("ABCDEF", false), ("0123456789abcdef", true)])
    func taskIDsAreLowercaseHex(_ id: String, _ wellFormed: Bool) {
        #expect(TaskID.isWellFormed(id) == wellFormed)
    }
}

@Suite struct ConfigTests {
    @Test(arguments: [("500ms", Duration.milliseconds(500)), ("30s", .seconds(30)), ("1m30s", .seconds(90)),
                      ("24h", .seconds(86400)), ("1.5s", .milliseconds(1500))])
    func goDurationsParse(_ text: String, _ expected: Duration) {
        #expect(YAMLConfig.parseDuration(text) == expected)
    }

    @Test(arguments: ["", "abc", "5x", "ms"])
    func badDurationsDoNot(_ text: String) {
        #expect(YAMLConfig.parseDuration(text) == nil)
    }

    @Test func unknownKeysAreNamed() throws {
        let y = try YAMLConfig(yaml: "server:\n  port: 1\n  bogus: 2\n")
        #expect(try y.int("server.port") == 1)
        do {
            try y.rejectUnknownKeys()
            Issue.record("unknown key accepted")
        } catch let e as ConfigError {
            #expect(e.description.contains("server.bogus"))
        }
    }

    @Test func wrongTypesAreNamed() throws {
        let y = try YAMLConfig(yaml: "scheduler:\n  retryLimit: many\n")
        #expect(throws: ConfigError.self) { try y.int("scheduler.retryLimit") }
    }
}

@Suite struct TokenBucketTests {
    @Test func limitsTheAverageRate() async throws {
        let bucket = TokenBucket(bytesPerSecond: 1_000_000)
        let start = ContinuousClock.now
        for _ in 0..<30 { try await bucket.take(100_000) }  // 3 MB at 1 MB/s from empty
        let elapsed = ContinuousClock.now - start
        // What is limited is the rate: never faster. The upper bound only catches a bucket
        // that waits several times too long; a loaded machine (CI runs builds beside it)
        // makes any tight bound fail by itself (5.05 s against 5 s, once).
        #expect(elapsed >= .milliseconds(2900))
        #expect(elapsed < .seconds(15))
    }

    @Test func unlimitedNeverWaits() async throws {
        let bucket = TokenBucket(bytesPerSecond: 0)
        let start = ContinuousClock.now
        for _ in 0..<1000 { try await bucket.take(1 << 20) }
        // A gigabyte at any finite rate this bucket could be set to would take far longer.
        #expect(ContinuousClock.now - start < .seconds(2))
    }
}
