/// The HTTP/2 rules for a request's header fields (RFC 9113 §8.2–8.3) that nghttp2 checks
/// when its HTTP messaging checks are on, with one difference: `:authority` and `host` may
/// carry any field value. grpc-go sends a unix socket's path there (`/run/dfdaemon.sock`),
/// which nghttp2's authority grammar refuses by resetting the stream; gRPC's own servers
/// accept it. nghttp2's checks cannot be relaxed for one field (a pseudo-header that fails
/// them always resets the stream), so the server session turns them off and applies these.
///
/// A value type fed one field at a time as nghttp2 decodes the block; `finish` names the
/// first rule broken, if any, and the session resets the stream with PROTOCOL_ERROR then.
struct RequestHeaderRules {
    enum Block { case request, trailers }

    enum Violation: Equatable, CustomStringConvertible {
        case invalidName
        case invalidValue(String)
        case unknownPseudoHeader(String)
        case pseudoHeaderAfterRegular(String)
        case repeatedPseudoHeader(String)
        case pseudoHeaderInTrailers(String)
        case connectionSpecific(String)
        case teOtherThanTrailers
        case missing(String)
        case invalidPath

        var description: String {
            switch self {
            case .invalidName: "a header name with characters HTTP/2 forbids (uppercase, separators, controls)"
            case .invalidValue(let name): "a value of \(name) with NUL, CR, LF or surrounding whitespace"
            case .unknownPseudoHeader(let name): "unknown pseudo-header \(name)"
            case .pseudoHeaderAfterRegular(let name): "pseudo-header \(name) after a regular header"
            case .repeatedPseudoHeader(let name): "pseudo-header \(name) given twice"
            case .pseudoHeaderInTrailers(let name): "pseudo-header \(name) in trailers"
            case .connectionSpecific(let name): "connection-specific header \(name)"
            case .teOtherThanTrailers: "te other than \"trailers\""
            case .missing(let name): "no \(name)"
            case .invalidPath: ":path neither absolute nor \"*\" for OPTIONS"
            }
        }
    }

    private let block: Block
    private(set) var violation: Violation?
    private var pseudoHeadersSeen: Set<String> = []
    private var regularSeen = false
    private var method: String?
    private var path: String?

    init(block: Block) { self.block = block }

    mutating func add(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        guard violation == nil else { return }
        violation = check(name: name, value: value)
    }

    /// The first rule the block broke, once it has ended.
    func finish() -> Violation? {
        if let violation { return violation }
        guard block == .request else { return nil }
        guard let method, !method.isEmpty else { return .missing(":method") }
        // CONNECT names only an authority (RFC 9113 §8.5); nothing here serves it, but it is
        // refused by the layer above with a status rather than as malformed.
        if method == "CONNECT" { return pseudoHeadersSeen.contains(":authority") ? nil : .missing(":authority") }
        guard pseudoHeadersSeen.contains(":scheme") else { return .missing(":scheme") }
        guard let path, !path.isEmpty else { return .missing(":path") }
        guard path.hasPrefix("/") || (path == "*" && method == "OPTIONS") else { return .invalidPath }
        return nil
    }

    private mutating func check(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) -> Violation? {
        guard let first = name.first else { return .invalidName }
        if first == UInt8(ascii: ":") {
            let text = String(decoding: name, as: UTF8.self)
            guard block == .request else { return .pseudoHeaderInTrailers(text) }
            guard !regularSeen else { return .pseudoHeaderAfterRegular(text) }
            guard Self.requestPseudoHeaders.contains(text) else { return .unknownPseudoHeader(text) }
            guard pseudoHeadersSeen.insert(text).inserted else { return .repeatedPseudoHeader(text) }
            let isAuthority = text == ":authority"
            guard Self.isValidValue(value, strictWhitespace: !isAuthority) else { return .invalidValue(text) }
            if text == ":method" { method = String(decoding: value, as: UTF8.self) }
            if text == ":path" { path = String(decoding: value, as: UTF8.self) }
            return nil
        }
        regularSeen = true
        guard name.allSatisfy(Self.isTokenByte) else { return .invalidName }
        let text = String(decoding: name, as: UTF8.self)
        if Self.connectionSpecific.contains(text) { return .connectionSpecific(text) }
        if text == "te", !value.elementsEqual("trailers".utf8) { return .teOtherThanTrailers }
        guard Self.isValidValue(value, strictWhitespace: text != "host") else { return .invalidValue(text) }
        return nil
    }

    private static let requestPseudoHeaders: Set<String> = [":method", ":scheme", ":path", ":authority", ":protocol"]
    private static let connectionSpecific: Set<String> = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]

    /// A lowercase RFC 9110 token character.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// No NUL, CR or LF anywhere; with `strictWhitespace`, no space or tab at either end
    /// (RFC 9113 §8.2.1).
    private static func isValidValue(_ value: UnsafeBufferPointer<UInt8>, strictWhitespace: Bool) -> Bool {
        guard !value.contains(where: { $0 == 0 || $0 == 0x0A || $0 == 0x0D }) else { return false }
        guard strictWhitespace, let first = value.first, let last = value.last else { return true }
        let isWhitespace = { (b: UInt8) in b == 0x20 || b == 0x09 }
        return !isWhitespace(first) && !isWhitespace(last)
    }
}
