import Foundation

/// Docker through the mirror: the mirror first in `daemon.json`'s `registry-mirrors` (Docker
/// Hub pulls try it first and fall back to the Hub), and, for a plain-HTTP mirror, its
/// `host:port` in `insecure-registries`. Every other key is kept as it was.
public enum DockerSetup {
    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public static func editedDaemonJSON(_ text: String, proxy: String, proxyLocation: String) throws -> String {
        var object: [String: Any] = [:]
        if !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            guard let parsed = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw Invalid(description: "daemon.json is not a JSON object; it is left as it is")
            }
            object = parsed
        }
        let mirror = proxy.hasSuffix("/") ? String(proxy.dropLast()) : proxy
        var mirrors = (object["registry-mirrors"] as? [String]) ?? []
        mirrors.removeAll { $0 == mirror || $0 == mirror + "/" }
        object["registry-mirrors"] = [mirror] + mirrors
        if mirror.hasPrefix("http://") {
            var insecure = (object["insecure-registries"] as? [String]) ?? []
            if !insecure.contains(proxyLocation) { insecure.append(proxyLocation) }
            object["insecure-registries"] = insecure
        }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
