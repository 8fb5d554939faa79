import Foundation
import PeerDaemon
import Testing

@Suite struct ProxyConfigTests {
    func load(_ yaml: String) throws -> DaemonConfig {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("proxy-\(UUID().uuidString).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try DaemonConfig.load(path: path)
    }

    @Test func defaultsFollowDragonfly() throws {
        let c = try load("server:\n  listen: 65001\n")
        #expect(c.proxy.registryMirrorURL == "https://index.docker.io")
        #expect(c.proxy.rules.map(\.regex) == ["blobs/sha256.*"])
        #expect(!c.proxy.dynamic)
    }

    @Test func rulesRegistriesAndTheGoClientSpelling() throws {
        let c = try load("""
        proxy:
          registryMirror:
            url: https://harbor.example.com
            dynamic: true
          rules:
            - regex: blobs/sha256.*
              useTLS: true
              filteredQueryParams: [X-Amz-Signature]
          proxies:
            - regx: layers/.*
              redirect: mirror.example.com
          registries:
            - url: https://harbor.example.com
              host: harbor
              username: robot
              password: pw
              insecure: true
        """)
        #expect(c.proxy.registryMirrorURL == "https://harbor.example.com")
        #expect(c.proxy.dynamic)
        #expect(c.proxy.rules.map(\.regex) == ["blobs/sha256.*", "layers/.*"])
        #expect(c.proxy.rules[0].useTLS && c.proxy.rules[0].filteredQueryParams == ["X-Amz-Signature"])
        #expect(c.proxy.rules[1].redirect == "mirror.example.com")
        #expect(c.proxy.registries.first?.isNamed("harbor") == true)
        #expect(c.proxy.registries.first?.isNamed("harbor.example.com") == true)
        #expect(c.proxy.insecureHosts == ["harbor.example.com"])
    }

    @Test func mistakesAreNamed() {
        #expect(throws: (any Error).self) { try load("proxy:\n  rules:\n    - regex: a\n      typo: 1\n") }
        #expect(throws: (any Error).self) { try load("proxy:\n  rules:\n    - regex: '('\n") }
        #expect(throws: (any Error).self) { try load("proxy:\n  registries:\n    - username: x\n") }
        #expect(throws: (any Error).self) { try load("proxy:\n  registryMirror:\n    url: not a url\n") }
        do {
            _ = try load("proxy:\n  rules:\n    - regex: a\n      typo: 1\n")
        } catch {
            #expect("\(error)".contains("proxy.rules[0]: unknown key typo"))
        }
    }
}
