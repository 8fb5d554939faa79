import Testing
@testable import ProtoJSON

/// A schema like grpc.testing's, plus a map, an enum, int64 and a Timestamp.
func samplePool() -> SchemaPool {
    var pool = SchemaPool()
    pool.enums["t.Kind"] = EnumInfo(fullName: "t.Kind", values: [("ZERO", 0), ("ONE", 1)])
    pool.messages["t.Payload"] = MessageInfo(fullName: "t.Payload", fields: [
        FieldInfo(name: "type", number: 1, type: .enum, typeName: "t.Kind"),
        FieldInfo(name: "body", number: 2, type: .bytes),
    ])
    pool.messages["t.Msg.LabelsEntry"] = MessageInfo(fullName: "t.Msg.LabelsEntry", fields: [
        FieldInfo(name: "key", number: 1, type: .string), FieldInfo(name: "value", number: 2, type: .string),
    ], isMapEntry: true)
    pool.messages["google.protobuf.Timestamp"] = MessageInfo(fullName: "google.protobuf.Timestamp", fields: [
        FieldInfo(name: "seconds", number: 1, type: .int64), FieldInfo(name: "nanos", number: 2, type: .int32),
    ])
    pool.messages["t.Msg"] = MessageInfo(fullName: "t.Msg", fields: [
        FieldInfo(name: "response_size", number: 2, type: .int32),
        FieldInfo(name: "payload", number: 3, type: .message, typeName: "t.Payload"),
        FieldInfo(name: "big", number: 4, type: .int64),
        FieldInfo(name: "sizes", number: 5, type: .uint32, isRepeated: true),
        FieldInfo(name: "labels", number: 6, type: .message, isRepeated: true, typeName: "t.Msg.LabelsEntry"),
        FieldInfo(name: "at", number: 7, type: .message, typeName: "google.protobuf.Timestamp"),
        FieldInfo(name: "neg", number: 8, type: .sint32),
        FieldInfo(name: "maybe", number: 9, type: .string, oneofName: "_maybe"),
    ])
    return pool
}

@Suite struct DynamicCodecTests {
    @Test func encodesKnownWireBytes() throws {
        let bytes = try DynamicEncoder(pool: samplePool()).encode(JSONParser.parse(#"{"responseSize": 3}"#), as: "t.Msg")
        #expect(bytes == [0x10, 0x03])
    }

    @Test func roundTripsEveryKindOfField() throws {
        let text = #"""
        {"responseSize": 314159, "payload": {"type": "ONE", "body": "AAEC"}, "big": "-9007199254740993",
         "sizes": [1, 300, 70000], "labels": {"a": "b", "c": ""}, "at": "2024-02-29T12:34:56.5Z",
         "neg": -5, "maybe": ""}
        """#
        let pool = samplePool()
        let bytes = try DynamicEncoder(pool: pool).encode(JSONParser.parse(text), as: "t.Msg")
        let json = try DynamicDecoder(pool: pool).decode(bytes, as: "t.Msg")
        #expect(json["responseSize"] == .number("314159"))
        #expect(json["payload"]?["type"] == .string("ONE"))
        #expect(json["payload"]?["body"] == .string("AAEC"))
        #expect(json["big"] == .string("-9007199254740993"))
        #expect(json["sizes"] == .array([.number("1"), .number("300"), .number("70000")]))
        #expect(json["labels"] == .object([("a", .string("b")), ("c", .string(""))]))
        #expect(json["at"] == .string("2024-02-29T12:34:56.500Z"))
        #expect(json["neg"] == .number("-5"))
        #expect(json["maybe"] == .string(""), "a present optional field is printed even when empty")
    }

    @Test func defaultsAreOmitted() throws {
        let json = try DynamicDecoder(pool: samplePool()).decode([0x10, 0x00], as: "t.Msg")
        #expect(json == .object([]))
    }

    /// grpcurl's -emit-defaults (jsonpb EmitDefaults): every field but unset oneof members,
    /// messages as null, the enum's first value by name.
    @Test func emitDefaultsPrintsEveryFieldButUnsetOneofs() throws {
        let decoder = DynamicDecoder(pool: samplePool(), emitDefaults: true)
        let json = try decoder.decode([0x10, 0x00], as: "t.Msg")
        #expect(json == .object([
            ("responseSize", .number("0")), ("payload", .null), ("big", .string("0")), ("sizes", .array([])),
            ("labels", .object([])), ("at", .null), ("neg", .number("0")),
        ]))
        let payload = try decoder.decode([], as: "t.Payload")
        #expect(payload == .object([("type", .string("ZERO")), ("body", .string(""))]))
    }

    @Test(arguments: [
        #"{"nope": 1}"#, #"{"responseSize": "x"}"#, #"{"responseSize": 3000000000}"#,
        #"{"payload": {"type": "TWO"}}"#, #"{"sizes": 3}"#, #"{"payload": {"body": "!!"}}"#, #"[1]"#,
    ])
    func badInputIsAClearError(_ text: String) throws {
        let value = try JSONParser.parse(text)
        #expect(throws: ProtoJSONError.self) { try DynamicEncoder(pool: samplePool()).encode(value, as: "t.Msg") }
    }

    @Test func truncatedWireBytesAreAnError() {
        #expect(throws: ProtoJSONError.self) { try DynamicDecoder(pool: samplePool()).decode([0x1a, 0x05, 0x08], as: "t.Msg") }
    }

    @Test func parsesAStreamOfObjects() throws {
        let values = try JSONParser.parseAll("{\"a\": 1}\n{\"b\": [true, null, \"\\u263a\"]}  {}")
        #expect(values.count == 3)
        #expect(values[1]["b"] == .array([.bool(true), .null, .string("☺")]))
    }

    @Test(arguments: [(Int64(0), "1970-01-01T00:00:00Z"), (951_782_400, "2000-02-29T00:00:00Z"),
                      (-86_400, "1969-12-31T00:00:00Z"), (4_102_444_800, "2100-01-01T00:00:00Z")])
    func timestampsFormatAndParse(_ seconds: Int64, _ text: String) {
        #expect(WellKnownJSON.formatRFC3339(seconds: seconds, nanos: 0) == text)
        #expect(WellKnownJSON.parseRFC3339(text) == Double(seconds))
    }
}
