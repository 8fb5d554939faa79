import DragonflyCommon
import Foundation

/// Any JSON document: cluster configs, scopes and job arguments are free-form objects.
public enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n):
            if let i = Int64(exactly: n) { try c.encode(i) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    public static let emptyObject = JSONValue.object([:])

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var numberValue: Double? { if case .number(let n) = self { return n } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }

    /// Stored as compact JSON text.
    public var text: String {
        let data = (try? JSONCoding.encoder.encode(self)) ?? Data("null".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    public init(text: String?) {
        guard let text, let data = text.data(using: .utf8),
              let v = try? JSONCoding.decoder.decode(JSONValue.self, from: data) else {
            self = .emptyObject
            return
        }
        self = v
    }
}

/// The manager's JSON conventions: snake_case field names as Dragonfly's REST API uses,
/// RFC 3339 times.
public enum JSONCoding {
    public static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .iso8601
        return e
    }

    public static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }
}

extension JSONValue {
    /// The same value with credentials masked, for answers and the console: the value of
    /// every key `LogRedaction.isCredentialName` flags (Authorization, Cookie, X-Api-Key,
    /// anything naming a token, secret, password, key or auth), anywhere in the document,
    /// and the signature parameters and password of every URL-looking string. A value
    /// stored for the job runner stays whole; only what is shown is masked.
    public func maskingSecrets() -> JSONValue {
        switch self {
        case .object(let o):
            var out: [String: JSONValue] = [:]
            for (k, v) in o {
                out[k] = LogRedaction.isCredentialName(k) && v != .null ? .string(LogRedaction.mask) : v.maskingSecrets()
            }
            return .object(out)
        case .array(let a): return .array(a.map { $0.maskingSecrets() })
        case .string(let s) where s.contains("?") || s.contains("@"): return .string(LogRedaction.maskingCredentials(inURL: s))
        default: return self
        }
    }
}

extension JobRecord {
    /// The job as the REST API shows it: arguments and result without their secrets (a
    /// result can echo a URL or a header back).
    public func maskingSecrets() -> JobRecord {
        var job = self
        job.args = args.maskingSecrets()
        job.result = result.maskingSecrets()
        return job
    }
}
