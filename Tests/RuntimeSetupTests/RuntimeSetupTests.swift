import DragonflyCommon
import Foundation
import Testing
@testable import RuntimeSetup

@Suite struct ContainerdSetupTests {
    @Test func aConfigWithoutTheRegistryTableGetsOneForTheOneXPlugin() {
        let before = "version = 2\nroot = \"/var/lib/containerd\"\n\n[grpc]\n  address = \"/run/containerd/containerd.sock\"\n"
        let (after, certs) = ContainerdSetup.editedConfig(before)
        #expect(certs == "/etc/containerd/certs.d")
        #expect(after == before + "\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n")
    }

    @Test func containerdTwoConfigsUseTheImagesPlugin() {
        let (after, _) = ContainerdSetup.editedConfig("version = 3\n")
        #expect(after.contains("[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n"))
        #expect(ContainerdSetup.pluginID(forConfig: "version=3 # two point x") == "io.containerd.cri.v1.images")
        #expect(ContainerdSetup.pluginID(forConfig: "[plugins]\nversion = 3\n") == "io.containerd.grpc.v1.cri", "only a top-level version counts")
    }

    @Test func aConfigPathAlreadySetIsKeptAndItsFirstDirectoryUsed() {
        let before = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d:/etc/docker/certs.d\"\n"
        let (after, certs) = ContainerdSetup.editedConfig(before)
        #expect(after == before && certs == "/etc/containerd/certs.d")
    }

    @Test func anExistingTableOrAnEmptyConfigPathGetsOurs() {
        let table = "version = 2\n[ plugins.\"io.containerd.grpc.v1.cri\".registry ] # mirrors below\n  [plugins.\"io.containerd.grpc.v1.cri\".registry.auths]\n"
        let (inserted, _) = ContainerdSetup.editedConfig(table)
        #expect(inserted == "version = 2\n[ plugins.\"io.containerd.grpc.v1.cri\".registry ] # mirrors below\n  config_path = \"/etc/containerd/certs.d\"\n  [plugins.\"io.containerd.grpc.v1.cri\".registry.auths]\n")
        let empty = "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n    config_path = \"\"\n"
        #expect(ContainerdSetup.editedConfig(empty).text == "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n    config_path = \"/etc/containerd/certs.d\"\n")
    }

    @Test(arguments: ["", "version = 2\n", "version = 3\n[plugins]\n", "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n"])
    func editingTwiceChangesNothingMore(_ config: String) {
        let once = ContainerdSetup.editedConfig(config).text
        #expect(ContainerdSetup.editedConfig(once).text == once)
    }

    @Test func hostsFilesNameTheRegistryAndTheMirror() {
        var registry = InitConfig.ContainerdRegistry(hostNamespace: "docker.io", serverAddress: "https://index.docker.io")
        registry.skipVerify = true
        #expect(ContainerdSetup.hostsFile(for: registry, proxy: "http://127.0.0.1:65001") == """
            server = "https://index.docker.io"

            [host."http://127.0.0.1:65001"]
              capabilities = ["pull", "resolve"]
              skip_verify = true
              [host."http://127.0.0.1:65001".header]
                X-Dragonfly-Registry = "https://index.docker.io"

            """)
        #expect(ContainerdSetup.quoted("a\"b\\c\n") == "\"a\\\"b\\\\c\\n\"")
    }
}

@Suite struct DockerAndRegistriesConfTests {
    @Test func daemonJSONKeepsItsKeysAndPutsTheMirrorFirstOnce() throws {
        let before = #"{"log-driver": "journald", "registry-mirrors": ["https://mirror.example"]}"#
        let once = try DockerSetup.editedDaemonJSON(before, proxy: "http://127.0.0.1:65001", proxyLocation: "127.0.0.1:65001")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(once.utf8)) as? [String: Any])
        #expect(parsed["log-driver"] as? String == "journald")
        #expect(parsed["registry-mirrors"] as? [String] == ["http://127.0.0.1:65001", "https://mirror.example"])
        #expect(parsed["insecure-registries"] as? [String] == ["127.0.0.1:65001"])
        #expect(try DockerSetup.editedDaemonJSON(once, proxy: "http://127.0.0.1:65001", proxyLocation: "127.0.0.1:65001") == once)
        #expect(throws: DockerSetup.Invalid.self) { try DockerSetup.editedDaemonJSON("[1, 2]", proxy: "http://x:1", proxyLocation: "x:1") }
    }

    @Test func registriesConfMirrorsEachRegistry() {
        var conf = InitConfig.RegistriesConf()
        conf.unqualifiedSearchRegistries = ["docker.io"]
        conf.registries = [("docker.io", "registry-1.docker.io")]
        #expect(RegistriesConfSetup.file(conf, proxyLocation: "127.0.0.1:65001") == """
            unqualified-search-registries = ["docker.io"]

            [[registry]]
            prefix = "docker.io"
            location = "registry-1.docker.io"

            [[registry.mirror]]
            location = "127.0.0.1:65001"
            insecure = true

            """)
    }
}

@Suite struct SetupPlanTests {
    func directory() -> String {
        let path = NSTemporaryDirectory() + "dfinit-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func applyKeepsTheOriginalOnceAndASecondRunChangesNothing() throws {
        let dir = directory()
        let config = dir + "/config.toml"
        try "version = 2\n".write(toFile: config, atomically: true, encoding: .utf8)
        var containerd = InitConfig.Containerd(configPath: config)
        containerd.registries = [.init(hostNamespace: "docker.io", serverAddress: "https://index.docker.io")]
        containerd.proxyAllRegistries = false
        let setup = InitConfig(runtime: .containerd(containerd))
        let first = try SetupPlan.make(setup)
        #expect(first.diff().contains("+  config_path = \"/etc/containerd/certs.d\""))
        // Only the config file is ours to write here; the certs directory is /etc's.
        let onlyConfig = SetupPlan(files: first.files.filter { $0.path == config })
        #expect(try onlyConfig.apply() == [config])
        #expect(try String(contentsOfFile: config + ".dfinit.bak", encoding: .utf8) == "version = 2\n")
        let again = try SetupPlan.make(setup)
        #expect(again.files.first { $0.path == config }?.changes == false)
        #expect(try SetupPlan(files: again.files.filter { $0.path == config }).apply().isEmpty)
    }

    @Test func theConfigIsReadStrictly() throws {
        let dir = directory()
        func load(_ yaml: String) throws -> InitConfig {
            try yaml.write(toFile: dir + "/dfinit.yaml", atomically: true, encoding: .utf8)
            return try InitConfig.load(path: dir + "/dfinit.yaml")
        }
        let ok = try load("proxy:\n  addr: http://127.0.0.1:65001\ncontainerRuntime:\n  docker:\n    configPath: /tmp/daemon.json\n")
        #expect(ok.runtime == .docker(configPath: "/tmp/daemon.json"))
        #expect(throws: ConfigError.self) { try load("containerRuntime:\n  docker:\n    configPath: /x\n    colour: blue\n") }
        #expect(throws: ConfigError.self) { try load("containerRuntime:\n  docker: {}\n  podman: {}\n") }
        #expect(throws: ConfigError.self) {
            try load("containerRuntime:\n  containerd:\n    registries:\n      - hostNamespace: ../etc\n        serverAddr: https://x\n")
        }
        #expect(throws: ConfigError.self) { try load("proxy:\n  addr: ftp://x\ncontainerRuntime:\n  docker: {}\n") }
    }
}
