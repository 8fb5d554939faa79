import Testing
@testable import PeerDaemon

@Suite struct OriginAllowListTests {
    let list = OriginAllowList(["registry.example", "127.0.0.1:8080", "*.s3.example.com", "[::1]:9000"])

    @Test(arguments: ["https://registry.example/v2/a/blobs/x", "http://registry.example:5000/f", "http://127.0.0.1:8080/f",
                      "https://bucket.s3.example.com/model.bin?sig=1", "http://[::1]:9000/f", "HTTPS://REGISTRY.EXAMPLE/x"])
    func allowed(_ url: String) {
        #expect(list.refusal(for: url) == nil)
    }

    @Test(arguments: ["http://127.0.0.1:8081/f", "http://evil.example/f", "https://s3.example.com.evil/x",
                      "https://evils3.example.com/x", "http://registry.example.evil/f", "file:///etc/passwd", "not a url"])
    func refused(_ url: String) {
        #expect(list.refusal(for: url) != nil)
    }

    @Test func anEmptyListAllowsEverything() {
        #expect(OriginAllowList().refusal(for: "http://anything/f") == nil)
    }
}
