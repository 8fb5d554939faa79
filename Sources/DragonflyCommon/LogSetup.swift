import Foundation
import Logging

/// `--log-level` and `--log-format text|json`, for every executable.
public enum LogSetup {
    public static func bootstrap(level: String, format: String) throws {
        guard let lvl = Logger.Level(rawValue: level.lowercased()) else {
            throw ConfigError("unknown log level \(level) (trace, debug, info, notice, warning, error, critical)")
        }
        guard format == "text" || format == "json" else {
            throw ConfigError("unknown log format \(format) (text or json)")
        }
        let json = format == "json"
        LoggingSystem.bootstrap { label in
            var h = StderrLogHandler(label: label, json: json)
            h.logLevel = lvl
            return h
        }
    }
}

struct StderrLogHandler: LogHandler {
    let label: String
    let json: Bool
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?,
             source: String, file: String, function: String, line: UInt) {
        let time = ISO8601DateFormatter().string(from: Date())
        var all = metadata
        extra?.forEach { all[$0] = $1 }
        let text: String
        if json {
            var obj: [String: String] = ["ts": time, "level": level.rawValue, "logger": label, "msg": "\(message)"]
            for (k, v) in all { obj[k] = "\(v)" }
            let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data()
            text = String(decoding: data, as: UTF8.self)
        } else {
            let meta = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }.joined(separator: " ")
            text = "\(time) \(level.rawValue.uppercased()) \(label): \(message)\(meta)"
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
