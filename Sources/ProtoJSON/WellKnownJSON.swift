/// The JSON forms protobuf gives some well-known types: Timestamp as RFC 3339, Duration
/// as seconds with an "s", Empty as {}.
enum WellKnownJSON {
    static func encode(_ json: JSONValue, typeName: String) throws(ProtoJSONError) -> [UInt8]? {
        switch typeName {
        case "google.protobuf.Duration":
            guard case .string(let s) = json, s.hasSuffix("s"), let value = Double(s.dropLast()) else {
                throw ProtoJSONError("a Duration is a string like \"1.5s\"")
            }
            return secondsAndNanos(value)
        case "google.protobuf.Timestamp":
            guard case .string(let s) = json, let seconds = parseRFC3339(s) else {
                throw ProtoJSONError("a Timestamp is an RFC 3339 string like \"2024-01-02T03:04:05Z\"")
            }
            return secondsAndNanos(seconds)
        default:
            return nil
        }
    }

    private static func secondsAndNanos(_ value: Double) -> [UInt8] {
        var w = WireWriter()
        let seconds = Int64(value.rounded(.towardZero))
        let nanos = Int32(((value - Double(seconds)) * 1e9).rounded())
        if seconds != 0 { w.tag(1, 0); w.varint(UInt64(bitPattern: seconds)) }
        if nanos != 0 { w.tag(2, 0); w.varint(UInt64(bitPattern: Int64(nanos))) }
        return w.bytes
    }

    static func decode(_ values: [Int: [JSONValue]], typeName: String) -> JSONValue? {
        func int(_ n: Int) -> Int64 {
            switch values[n]?.last {
            case .string(let s)?: return Int64(s) ?? 0
            case .number(let s)?: return Int64(s) ?? 0
            default: return 0
            }
        }
        switch typeName {
        case "google.protobuf.Duration":
            let s = int(1), n = int(2)
            if n == 0 { return .string("\(s)s") }
            let frac = String(String(abs(n)).leftPadded(9).reversed().drop(while: { $0 == "0" }).reversed())
            let sign = (s < 0 || n < 0) ? "-" : ""
            return .string("\(sign)\(abs(s)).\(frac)s")
        case "google.protobuf.Timestamp":
            return .string(formatRFC3339(seconds: int(1), nanos: int(2)))
        default:
            return nil
        }
    }

    // Civil-from-days and days-from-civil (proleptic Gregorian), so no Foundation is needed.
    static func formatRFC3339(seconds: Int64, nanos: Int64) -> String {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let rem = seconds - days * 86400
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int64) -> String { String(v).leftPadded(2) }
        var out = "\(String(y).leftPadded(4))-\(two(m))-\(two(d))T\(two(rem / 3600)):\(two(rem % 3600 / 60)):\(two(rem % 60))"
        if nanos > 0 {
            var frac = String(nanos).leftPadded(9)
            while frac.hasSuffix("000") { frac.removeLast(3) }
            out += "." + frac
        }
        return out + "Z"
    }

    static func parseRFC3339(_ s: String) -> Double? {
        let c = Array(s.utf8)
        guard c.count >= 20 else { return nil }
        func num(_ a: Int, _ b: Int) -> Int64? { Int64(String(decoding: c[a..<b], as: UTF8.self)) }
        guard let y = num(0, 4), let mo = num(5, 7), let d = num(8, 10), let h = num(11, 13),
              let mi = num(14, 16), let se = num(17, 19) else { return nil }
        var i = 19
        var frac = 0.0
        if i < c.count, c[i] == UInt8(ascii: ".") {
            let start = i
            i += 1
            while i < c.count, c[i] >= 48, c[i] <= 57 { i += 1 }
            frac = Double("0" + String(decoding: c[start..<i], as: UTF8.self)) ?? 0
        }
        var offset: Int64 = 0
        if i < c.count, c[i] == UInt8(ascii: "+") || c[i] == UInt8(ascii: "-"), i + 6 <= c.count,
           let oh = num(i + 1, i + 3), let om = num(i + 4, i + 6) {
            offset = (oh * 3600 + om * 60) * (c[i] == UInt8(ascii: "-") ? -1 : 1)
        }
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        return Double(days * 86400 + h * 3600 + mi * 60 + se - offset) + frac
    }
}
