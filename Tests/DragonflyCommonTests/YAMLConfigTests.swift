import Testing
@testable import DragonflyCommon

/// A config file is input we did not write: shapes that made Yams' constructor trap, or
/// that recurse or expand without bound, must be ConfigErrors; ordinary YAML still reads.
@Suite struct YAMLConfigTests {
    private func error(_ yaml: String) -> String? {
        do {
            _ = try YAMLConfig(yaml: yaml, name: "t.yaml")
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func aMapOrListAsKeyIsAnError() {
        #expect(error("? [a, b]\n: c\n")?.contains("map key must be a plain string") == true)
        #expect(error("server:\n  ? {x: 1}\n  : y\n")?.contains("map key must be a plain string") == true)
        #expect(error("set: !!set {? {a: 1}}\n")?.contains("map key must be a plain string") == true)
    }

    @Test func deepNestingIsAnError() {
        let nested = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect(error("a: \(nested)\n")?.contains("nested deeper than 64") == true)
        // Deep enough to overflow the stack of Yams' recursive composer.
        let flow = String(repeating: "[", count: 30000) + String(repeating: "]", count: 30000)
        #expect(error("a: \(flow)\n")?.contains("nests too deep") == true)
        let block = String(repeating: "- ", count: 30000) + "x"
        #expect(error(block)?.contains("nests too deep") == true)
        let hidden = "a: '" + String(repeating: "]", count: 30000) + "'\nb: " + flow + "\n"
        #expect(error(hidden)?.contains("nests too deep") == true)
    }

    @Test func anAliasBombIsAnError() {
        var yaml = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...8 {
            let refs = Array(repeating: "*l\(i - 1)", count: 10).joined(separator: ", ")
            yaml += "l\(i): &l\(i) [\(refs)]\n"
        }
        #expect(error(yaml)?.contains("more than") == true)
    }

    @Test func ordinaryValuesAndMergeKeysRead() throws {
        let yaml = """
        base: &base
          port: 65001
          tls: false
        server:
          <<: *base
          tls: true
          name: "a"
          tags: [x, y]
          wait: 30s
        """
        let config = try YAMLConfig(yaml: yaml, name: "t.yaml")
        #expect(try config.int("server.port") == 65001)
        #expect(try config.bool("server.tls") == true)
        #expect(try config.string("server.name") == "a")
        #expect(try config.strings("server.tags") == ["x", "y"])
        #expect(try config.duration("server.wait") == .seconds(30))
    }

    @Test func anEmptyDocumentIsAnEmptyConfig() throws {
        let config = try YAMLConfig(yaml: "", name: "t.yaml")
        #expect(try config.string("a") == nil)
    }
}
