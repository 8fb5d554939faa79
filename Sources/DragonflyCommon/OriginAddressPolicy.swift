import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which network addresses a component may fetch from on a client's behalf. A dfdaemon
/// fetches whatever URL a peer, the scheduler or a mirror client names, so without this it
/// is a proxy into the node's own network. Link-local addresses (where clouds serve instance
/// credentials) are refused unless allowed; loopback and private ranges only when asked,
/// because a cluster often pulls from an internal registry or a local origin.
public struct OriginAddressPolicy: Sendable, Equatable {
    /// Also refuse loopback, private, shared (CGNAT), benchmark and unspecified ranges.
    public var refusePrivate = false
    /// Allow link-local and cloud-metadata addresses (169.254.0.0/16, fe80::/10,
    /// fd00:ec2::254, 100.100.100.200).
    public var allowLinkLocal = false

    public init(refusePrivate: Bool = false, allowLinkLocal: Bool = false) {
        self.refusePrivate = refusePrivate
        self.allowLinkLocal = allowLinkLocal
    }

    /// The kinds of address this policy tells apart.
    public enum AddressClass: String, Sendable {
        case linkLocal = "link-local or cloud-metadata"
        case privateRange = "loopback or private"
        case global = "global"
    }

    /// Nil when `address` may be fetched from; otherwise why not.
    public func refusal(forAddress address: IPAddressBytes) -> String? {
        switch Self.classify(address) {
        case .linkLocal where !allowLinkLocal:
            return "\(address) is a link-local or cloud-metadata address (set download.allowLinkLocalOrigins to allow it)"
        case .privateRange where refusePrivate:
            return "\(address) is a loopback or private address and download.refusePrivateOrigins is on"
        default:
            return nil
        }
    }

    /// Nil when every address `host` resolves to may be fetched from; otherwise why not.
    /// A name that does not resolve is let through: the fetch itself fails and says so.
    /// (A name that resolves differently between this check and the connection can still
    /// slip through; that needs a resolver inside the HTTP client, which ours lacks.)
    public func refusal(forHost host: String) async -> String? {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let literal = IPAddressBytes(parsing: bare) { return refusal(forAddress: literal) }
        guard !(allowLinkLocal && !refusePrivate) else { return nil }
        for address in await Self.resolve(bare) {
            if let why = refusal(forAddress: address) { return "\(host) resolves to \(why)" }
        }
        return nil
    }

    public static func classify(_ a: IPAddressBytes) -> AddressClass {
        let b = a.bytes
        if b.count == 16 {
            // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) addresses reach an IPv4 host.
            let mapped = b[0..<10].allSatisfy { $0 == 0 } && b[10] == 0xff && b[11] == 0xff
            let nat64 = b[0..<4] == [0x00, 0x64, 0xff, 0x9b] && b[4..<12].allSatisfy { $0 == 0 }
            if mapped || nat64 { return classify(IPAddressBytes(bytes: Array(b[12..<16]))) }
            if b[0] == 0xfe && (b[1] & 0xc0) == 0x80 { return .linkLocal }
            if b == [0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54] { return .linkLocal }
            if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] <= 1 { return .privateRange }   // :: and ::1
            if (b[0] & 0xfe) == 0xfc { return .privateRange }                          // fc00::/7
            return .global
        }
        guard b.count == 4 else { return .global }
        if b[0] == 169 && b[1] == 254 { return .linkLocal }
        if b == [100, 100, 100, 200] { return .linkLocal }                                 // Alibaba Cloud metadata
        if b[0] == 127 || b[0] == 0 || b[0] == 10 { return .privateRange }
        if b[0] == 172 && (b[1] & 0xf0) == 16 { return .privateRange }
        if b[0] == 192 && b[1] == 168 { return .privateRange }
        if b[0] == 100 && (b[1] & 0xc0) == 64 { return .privateRange }                  // 100.64.0.0/10
        if b[0] == 198 && (b[1] & 0xfe) == 18 { return .privateRange }                  // 198.18.0.0/15
        return .global
    }

    /// Every address getaddrinfo gives for `host`, resolved off the cooperative pool.
    static func resolve(_ host: String) async -> [IPAddressBytes] {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var hints = addrinfo()
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                var list: UnsafeMutablePointer<addrinfo>?
                guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else {
                    continuation.resume(returning: [])
                    return
                }
                defer { freeaddrinfo(first) }
                var found: [IPAddressBytes] = []
                var next: UnsafeMutablePointer<addrinfo>? = first
                while let entry = next {
                    if let sa = entry.pointee.ai_addr {
                        if entry.pointee.ai_family == AF_INET {
                            let v4 = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                            found.append(IPAddressBytes(bytes: withUnsafeBytes(of: v4) { Array($0) }))
                        } else if entry.pointee.ai_family == AF_INET6 {
                            let v6 = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                            found.append(IPAddressBytes(bytes: withUnsafeBytes(of: v6) { Array($0) }))
                        }
                    }
                    next = entry.pointee.ai_next
                }
                continuation.resume(returning: found)
            }
        }
    }
}

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address in network order.
public struct IPAddressBytes: Sendable, Equatable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// A dotted-quad or IPv6 literal (without brackets or zone); nil for anything else.
    public init?(parsing text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: v6) { Array($0) }
            return
        }
        return nil
    }

    public var description: String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        var i = 0
        while i + 1 < bytes.count {
            groups.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16))
            i += 2
        }
        return groups.joined(separator: ":")
    }
}
