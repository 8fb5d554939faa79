import Foundation

/// Host and peer ids in Dragonfly's formats: `ip-hostname` and `ip-hostname-uuid`, with
/// `-seed` appended for seed peers.
public enum PeerIdentity {
    public static func hostID(ip: String, hostname: String, seed: Bool = false) -> String {
        "\(ip)-\(hostname)" + (seed ? "-seed" : "")
    }

    public static func peerID(ip: String, hostname: String, seed: Bool = false, uuid: UUID = UUID()) -> String {
        "\(ip)-\(hostname)-\(uuid.uuidString.lowercased())" + (seed ? "-seed" : "")
    }
}
