import DragonflyCommon
import Foundation
import PeerConfig
import Testing
@testable import PeerDaemon

/// The dfdaemon's checks on what a client names: addresses to fetch from, piece layouts and
/// output paths (issue 17). The integration suite performs the same attacks on a real daemon.
@Suite struct OriginAddressPolicyTests {
    @Test(arguments: ["169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254", "100.100.100.200", "::ffff:169.254.169.254",
                      "64:ff9b::a9fe:a9fe"])
    func linkLocalAndMetadataAreAlwaysRefused(_ text: String) throws {
        let address = try #require(IPAddressBytes(parsing: text))
        #expect(OriginAddressPolicy.classify(address) == .linkLocal)
        #expect(OriginAddressPolicy().refusal(forAddress: address) != nil)
        #expect(OriginAddressPolicy(allowLinkLocal: true).refusal(forAddress: address) == nil)
    }

    @Test(arguments: ["127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1",
                      "0.0.0.0", "198.18.0.1", "::1", "::", "fc00::1", "fdff::1", "::ffff:10.0.0.1"])
    func privateRangesAreRefusedOnlyWhenAsked(_ text: String) throws {
        let address = try #require(IPAddressBytes(parsing: text))
        #expect(OriginAddressPolicy.classify(address) == .privateRange)
        #expect(OriginAddressPolicy().refusal(forAddress: address) == nil)
        #expect(OriginAddressPolicy(refusePrivate: true).refusal(forAddress: address) != nil)
    }

    @Test(arguments: ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:db8::1", "169.253.1.1", "198.20.0.1"])
    func globalAddressesPass(_ text: String) throws {
        let address = try #require(IPAddressBytes(parsing: text))
        #expect(OriginAddressPolicy.classify(address) == .global)
        #expect(OriginAddressPolicy(refusePrivate: true).refusal(forAddress: address) == nil)
    }

    @Test func namesAreCheckedByWhatTheyResolveTo() async {
        let strict = OriginAddressPolicy(refusePrivate: true)
        #expect(await strict.refusal(forHost: "localhost") != nil)
        #expect(await strict.refusal(forHost: "127.1") != nil)
        #expect(await strict.refusal(forHost: "[::1]") != nil)
        #expect(await OriginAddressPolicy().refusal(forHost: "localhost") == nil)
    }

    @Test func thePolicyChecksSchemeAllowListAndAddress() async {
        let policy = OriginPolicy(allowList: OriginAllowList(["127.0.0.1:8080"]))
        #expect(await policy.refusal(for: "http://127.0.0.1:8080/f") == nil)
        #expect(await policy.refusal(for: "http://127.0.0.1:8081/f") != nil)
        #expect(await policy.refusal(for: "file:///etc/passwd") != nil)
        #expect(await policy.refusal(for: "gopher://127.0.0.1:8080/") != nil)
        #expect(await OriginPolicy().refusal(for: "http://169.254.169.254/latest/meta-data") != nil)
    }
}

@Suite struct PieceLayoutBoundsTests {
    @Test(arguments: [UInt64.max, 1 << 63, 1, 4095, (64 << 20) + 1] as [UInt64])
    func requestedPieceLengthsOutsideTheRangeAreRefused(_ length: UInt64) {
        #expect(throws: PieceLayout.Refusal.self) { try PieceLayout.checked(contentLength: 1 << 30, requestedPieceLength: length) }
    }

    @Test func tooManyPiecesAreRefused() throws {
        #expect(throws: PieceLayout.Refusal.self) { try PieceLayout.checked(contentLength: UInt64.max, requestedPieceLength: nil) }
        #expect(throws: PieceLayout.Refusal.self) { try PieceLayout.checked(contentLength: 1 << 50, requestedPieceLength: 4 << 20) }
        let fine = try PieceLayout.checked(contentLength: 10 << 30, requestedPieceLength: 4 << 20)
        #expect(fine.pieceCount == 2560)
    }

    @Test func arithmeticOnHostileLayoutsSaturatesInsteadOfTrapping() {
        let huge = PieceLayout(contentLength: UInt64.max, pieceLength: 1)
        #expect(huge.exactPieceCount == UInt64.max)
        #expect(huge.pieceCount == UInt32.max)
        #expect(PieceLayout(contentLength: UInt64.max, pieceLength: UInt64.max).piece(1) == nil)
        #expect(PieceLayout(contentLength: UInt64.max, pieceLength: UInt64.max).pieceCount == 1)
        #expect(PieceLayout(contentLength: 10, pieceLength: 4).pieces(in: (start: 5, length: UInt64.max)).map(\.number) == [1, 2])
    }
}

@Suite struct OutputTargetTests {
    let allowed = ["/tmp/out", "/srv/data/"]

    @Test(arguments: ["relative/file", "/etc/passwd", "/tmp/out", "/tmp/out/../../etc/passwd", "/tmp/out/./f", "/tmp/outside/f",
                      "/tmp/out/", "/srv/data"])
    func pathsOutsideTheAllowedDirectoriesAreRefused(_ path: String) {
        #expect(throws: (any Error).self) { try OutputTarget.check(path, allowed: allowed) }
    }

    @Test func pathsInsideAreSplitAtTheAllowedDirectory() throws {
        let t = try OutputTarget.check("/tmp/out/a/b/file.bin", allowed: allowed)
        #expect(t.root == "/tmp/out" && t.below == ["a", "b"] && t.name == "file.bin")
        #expect(t.path == "/tmp/out/a/b/file.bin")
        #expect(try OutputTarget.check("/srv/data//x", allowed: allowed).path == "/srv/data/x")
    }

    @Test func aSymlinkBelowTheAllowedDirectoryIsNotFollowed() throws {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("output-target-\(UUID().uuidString)").path
        defer { try? fm.removeItem(atPath: root) }
        try fm.createDirectory(atPath: root + "/allowed", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/elsewhere", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: root + "/allowed/link", withDestinationPath: root + "/elsewhere")
        try Data("content".utf8).write(to: URL(fileURLWithPath: root + "/source"))
        let target = try OutputTarget.check(root + "/allowed/link/file", allowed: [root + "/allowed"])
        #expect(throws: (any Error).self) { try target.write(from: root + "/source") }
        #expect(try fm.contentsOfDirectory(atPath: root + "/elsewhere").isEmpty)
        let good = try OutputTarget.check(root + "/allowed/new/file", allowed: [root + "/allowed"])
        try good.write(from: root + "/source")
        #expect(fm.contents(atPath: root + "/allowed/new/file") == Data("content".utf8))
    }
}
