import Testing
@testable import PeerDaemon

/// A GET whose ETag or Last-Modified differs from the HEAD's is another version of the
/// content; one that leaves a validator out, or marks the same tag weak, is not.
@Suite struct OriginValidatorsTests {
    @Test func differentValidatorsAreAChange() {
        let head = OriginValidators(headers: ["ETag": "\"v1\"", "Last-Modified": "Sun, 06 Dec 2026 10:00:00 GMT"])
        #expect(head.mismatch(OriginValidators(etag: "\"v2\"", lastModified: head.lastModified))?.contains("ETag") == true)
        #expect(head.mismatch(OriginValidators(etag: head.etag, lastModified: "Sun, 06 Dec 2026 11:00:00 GMT"))?
            .contains("Last-Modified") == true)
    }

    @Test func sameOrMissingValidatorsAreNot() {
        let head = OriginValidators(headers: ["etag": "\"v1\""])
        #expect(head.mismatch(OriginValidators(etag: "\"v1\"")) == nil)
        #expect(head.mismatch(OriginValidators(etag: "W/\"v1\"")) == nil)
        #expect(head.mismatch(OriginValidators()) == nil)
        #expect(OriginValidators().mismatch(OriginValidators(etag: "\"v9\"", lastModified: "x")) == nil)
    }
}
