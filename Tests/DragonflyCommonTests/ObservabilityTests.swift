import CoreMetrics
import Testing
@testable import DragonflyCommon

@Suite struct LogRedactionTests {
    @Test(arguments: [
        ("https://bucket.s3.example.com/model.bin?X-Amz-Signature=abc&X-Amz-Credential=k", "https://bucket.s3.example.com/model.bin?…"),
        ("http://alice:s3cret@registry:5000/v2/app/blobs/sha256:00", "http://registry:5000/v2/app/blobs/sha256:00"),
        ("http://alice:s3cret@registry:5000/path?token=t#frag", "http://registry:5000/path?…"),
        ("/v2/app/manifests/v1?ns=docker.io", "/v2/app/manifests/v1?…"),
        ("http://origin/a@b/file", "http://origin/a@b/file"),
        ("http://origin/file", "http://origin/file"),
    ])
    func redacts(_ input: String, _ expected: String) {
        #expect(LogRedaction.url(input) == expected)
    }
}

@Suite struct PrometheusMetricsBridgeTests {
    @Test func swiftMetricsCallsBecomePrometheusMetricsWithHelp() {
        let registry = MetricsRegistry(prefix: "test_")
        let bridge = PrometheusMetricsBridge(registry: registry, help: ["calls_total": "Calls made"])
        let counter = bridge.makeCounter(label: "calls_total", dimensions: [("method", "Get")])
        counter.increment(by: 3)
        let timer = bridge.makeTimer(label: "call_seconds", dimensions: [("method", "Get")])
        timer.recordNanoseconds(20_000_000)  // 20 ms
        let text = String(decoding: registry.render(), as: UTF8.self)
        #expect(text.contains("# HELP calls_total Calls made"))
        #expect(text.contains("calls_total{method=\"Get\"} 3"))
        // A name without a published help text still gets one: promtool requires HELP.
        #expect(text.contains("# HELP call_seconds call seconds"))
        #expect(text.contains("# TYPE call_seconds histogram"))
        #expect(text.contains("call_seconds_bucket{method=\"Get\",le=\"0.01\"} 0"))
        #expect(text.contains("call_seconds_bucket{method=\"Get\",le=\"0.025\"} 1"))
        #expect(text.contains("call_seconds_count{method=\"Get\"} 1"))
    }

    @Test func destroyedCountersLeaveTheExposition() {
        let registry = MetricsRegistry(prefix: "test_")
        let bridge = PrometheusMetricsBridge(registry: registry, help: [:])
        let counter = bridge.makeCounter(label: "gone_total", dimensions: [])
        counter.increment(by: 1)
        bridge.destroyCounter(counter)
        #expect(!String(decoding: registry.render(), as: UTF8.self).contains("gone_total"))
    }
}
