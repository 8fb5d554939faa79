import ArgumentParser
import CLICommon
import DragonflyCommon
import Foundation
import RuntimeSetup

/// `dfdaemon init`, upstream's dfinit: points the node's container runtime at the
/// dfdaemon's registry mirror, from dfinit.yaml.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Point the container runtime (containerd, Docker, CRI-O or podman) at this node's registry mirror.",
        discussion: """
        Reads dfinit.yaml (--config, default /etc/dragonfly/dfinit.yaml) in upstream's keys (proxy.addr; containerRuntime.containerd | docker | crio | podman). \
        containerd: sets the CRI plugin's registry config_path (1.x io.containerd.grpc.v1.cri, 2.x \
        io.containerd.cri.v1.images) if unset and writes certs.d/<registry>/hosts.toml; Docker: daemon.json \
        registry-mirrors; CRI-O and podman: registries.conf mirrors. Idempotent; each file it changes is kept \
        once as <file>.dfinit.bak. Restart the runtime afterwards.
        """)

    /// `--config` is the dfdaemon's own option (one name, as upstream's dfinit spells it):
    /// given after `init`, it names dfinit.yaml.
    @ParentCommand var dfdaemon: DFDaemonCommand
    @Flag(help: "Print what would change, as a diff, and write nothing.")
    var dryRun = false

    func run() throws {
        let config = dfdaemon.config ?? "/etc/dragonfly/dfinit.yaml"
        do {
            if dfdaemon.checkConfig {
                _ = try InitConfig.load(path: config)
                return ConfigCheck.passed()
            }
            let plan = try SetupPlan.make(try InitConfig.load(path: config))
            if dryRun {
                let diff = plan.diff()
                print(diff.isEmpty ? "nothing to change" : diff, terminator: diff.isEmpty ? "\n" : "")
                return
            }
            let written = try plan.apply()
            print(written.isEmpty ? "nothing to change" : written.map { "wrote \($0)" }.joined(separator: "\n"))
        } catch {
            FileHandle.standardError.write(Data("dfdaemon init: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
