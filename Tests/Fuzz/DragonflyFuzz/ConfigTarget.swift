import DragonflyCommon
import PeerConfig
import SchedulerService

/// YAML into the dfdaemon's and the scheduler's config loaders: a bad file must be a
/// ConfigError naming what is wrong, never a crash.
enum ConfigTarget {
    static func run(_ input: UnsafeRawBufferPointer) {
        let text = String(decoding: input, as: UTF8.self)
        if let y = try? YAMLConfig(yaml: text, name: "fuzz.yaml") { _ = try? DaemonConfig.load(y) }
        if let y = try? YAMLConfig(yaml: text, name: "fuzz.yaml") { _ = try? SchedulerConfig.load(y) }
    }
}
