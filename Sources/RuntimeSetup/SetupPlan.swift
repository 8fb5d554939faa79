import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The files `dfdaemon init` writes for a configuration, worked out before anything is
/// touched: printed as a diff with `--dry-run`, else written, each original kept once as
/// `<file>.dfinit.bak`. Running it again with the same configuration changes nothing.
public struct SetupPlan: Sendable {
    public struct File: Sendable, Equatable {
        public let path: String
        /// What is there now; nil when the file does not exist.
        public let old: String?
        public let new: String
        public var changes: Bool { old != new }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let files: [File]

    /// Files larger than this are not runtime configuration; they are refused, not edited.
    static let maxFileBytes = 1 << 20

    public static func make(_ config: InitConfig, read: (String) throws -> String? = SetupPlan.readFile) throws -> SetupPlan {
        var files: [File] = []
        switch config.runtime {
        case .containerd(let c):
            let current = try read(c.configPath)
            let (text, certs) = ContainerdSetup.editedConfig(current ?? "")
            files.append(File(path: c.configPath, old: current, new: text))
            for registry in c.registries {
                let path = "\(certs)/\(registry.hostNamespace)/hosts.toml"
                files.append(File(path: path, old: try read(path),
                                  new: ContainerdSetup.hostsFile(for: registry, proxy: config.proxyAddress)))
            }
            if c.proxyAllRegistries {
                let path = "\(certs)/_default/hosts.toml"
                files.append(File(path: path, old: try read(path), new: ContainerdSetup.defaultHostsFile(proxy: config.proxyAddress)))
            }
        case .docker(let path):
            let current = try read(path)
            let text: String
            do {
                text = try DockerSetup.editedDaemonJSON(current ?? "", proxy: config.proxyAddress, proxyLocation: config.proxyLocation)
            } catch {
                throw Failure(description: "\(path): \(error)")
            }
            files.append(File(path: path, old: current, new: text))
        case .registriesConf(let r, _):
            files.append(File(path: r.configPath, old: try read(r.configPath),
                              new: RegistriesConfSetup.file(r, proxyLocation: config.proxyLocation)))
        }
        return SetupPlan(files: files)
    }

    public static func readFile(_ path: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        if let size = attributes[.size] as? Int, size > maxFileBytes {
            throw Failure(description: "\(path) is \(size) bytes; runtime configuration is smaller, so it is left alone")
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw Failure(description: "cannot read \(path) as UTF-8 text")
        }
        return text
    }

    /// A unified-style diff of every file that would change; empty when none would.
    public func diff() -> String {
        files.filter(\.changes).map { LineDiff.unified(old: $0.old ?? "", new: $0.new, path: $0.path, isNew: $0.old == nil) }
            .joined()
    }

    /// Writes the files that change: the original first copied to `<file>.dfinit.bak`
    /// (only the first time, so the backup is the file as it was before dfinit), the new
    /// content written beside it and renamed over it. Returns the paths written.
    @discardableResult
    public func apply() throws -> [String] {
        var written: [String] = []
        let fm = FileManager.default
        for file in files where file.changes {
            let url = URL(fileURLWithPath: file.path)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            let backup = file.path + ".dfinit.bak"
            if let old = file.old, !fm.fileExists(atPath: backup) {
                try Data(old.utf8).write(to: URL(fileURLWithPath: backup))
            }
            let temporary = file.path + ".dfinit.tmp"
            try Data(file.new.utf8).write(to: URL(fileURLWithPath: temporary))
            // The new file keeps the old one's mode (a daemon.json readable only by root stays so).
            if let mode = (try? fm.attributesOfItem(atPath: file.path))?[.posixPermissions] {
                try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: temporary)
            }
            guard rename(temporary, file.path) == 0 else {
                throw Failure(description: "cannot replace \(file.path): \(String(cString: strerror(errno)))")
            }
            written.append(file.path)
        }
        return written
    }
}

/// The smallest line diff (longest common subsequence), printed unified-style with all
/// lines in one hunk: configuration files are short.
enum LineDiff {
    static func unified(old: String, new: String, path: String, isNew: Bool) -> String {
        let a = lines(old), b = lines(new)
        var out = "--- \(isNew ? "/dev/null" : path)\n+++ \(path)\n@@ -1,\(a.count) +1,\(b.count) @@\n"
        guard a.count * b.count <= 4_000_000 else {
            return out + a.map { "-\($0)\n" }.joined() + b.map { "+\($0)\n" }.joined()
        }
        // lcs[i][j]: the common subsequence length of a[i...] and b[j...].
        var lcs = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                out += " \(a[i])\n"; i += 1; j += 1
            } else if j < b.count, i == a.count || lcs[i][j + 1] >= lcs[i + 1][j] {
                out += "+\(b[j])\n"; j += 1
            } else {
                out += "-\(a[i])\n"; i += 1
            }
        }
        return out
    }

    private static func lines(_ text: String) -> [String] {
        var parts = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if parts.last == "" { parts.removeLast() }
        return parts
    }
}
