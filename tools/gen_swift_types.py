"""Swift source for messages, enums and services. Part of tools/gen_swift.py; see there."""
import re

from gen_swift_model import (MARKER, RESERVED_MEMBERS, Writer, escape, lower_camel,
                             package_prefix, plan_fields, swift_string)

def emit_enum(w, model, full, enum, swift_name):
    short = swift_name.split(".")[-1]
    w.line(f"/// `{full[1:]}`. A struct, so values unknown to this build survive a round trip.")
    w.open(f"public struct {short}: ProtoEnum, RawRepresentable, CustomStringConvertible")
    w.line("public var rawValue: Int32")
    w.line("public init(rawValue: Int32) { self.rawValue = rawValue }")
    prefix = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", enum.name).upper() + "_"
    stripped = []
    for v in enum.value:
        name = v.name
        rest = name[len(prefix):] if name.startswith(prefix) else name
        stripped.append(rest if rest and not rest[0].isdigit() else name)
    if len({lower_camel(s.lower()) for s in stripped}) != len(stripped):
        stripped = [v.name for v in enum.value]
    names = []
    for v, s in zip(enum.value, stripped):
        member = lower_camel(s.lower())
        if member in RESERVED_MEMBERS or member == "init":
            member += "Value"
        names.append(member)
        w.line(f"public static let {escape(member)} = {short}(rawValue: {v.number})")
    w.open("public var description: String")
    w.line("switch rawValue {")
    seen = set()
    for v in enum.value:
        if v.number in seen:
            continue
        seen.add(v.number)
        w.line(f"case {v.number}: return {swift_string(v.name)}")
    w.line("default: return String(rawValue)")
    w.line("}")
    w.close()
    w.close()


def emit_message(w, model, full, message, swift_name):
    short = swift_name.split(".")[-1]
    plans = plan_fields(model, full, message)
    w.line(f"/// `{full[1:]}`.")
    w.open(f"public struct {short}: ProtoCMessage, Hashable")
    w.line(f"public static let protoMessageName: String = {swift_string(full[1:])}")
    w.line(f"public static let protoCDescriptor: ProtoCDescriptor = CProtosDescriptors.table[{swift_string(full[1:])}]")
    w.line()
    for p in plans:
        w.line(f"public var {p.prop}: {p.swift_type} = {p.default}")
    if plans:
        w.line()
    w.line("public init() {}")
    for p in plans:
        if p.kind != "oneof":
            continue
        w.line()
        w.open(f"public enum {p.enum_name}: Hashable, Sendable")
        for case, _, t in p.members:
            w.line(f"case {case}({t})")
        w.close()
    nested_names = set()
    for n in message.nested_type:
        if n.options.map_entry:
            continue
        nested_full = f"{full}.{n.name}"
        nested_names.add(model.swift_names[nested_full].split(".")[-1])
        w.line()
        emit_message(w, model, nested_full, n, model.swift_names[nested_full])
    for e in message.enum_type:
        nested_full = f"{full}.{e.name}"
        nested_names.add(model.swift_names[nested_full].split(".")[-1])
        w.line()
        emit_enum(w, model, nested_full, e, model.swift_names[nested_full])
    clash = nested_names & {p.enum_name for p in plans if p.kind == "oneof"}
    if clash:
        raise SystemExit(f"{full}: nested type names clash with oneof enums: {sorted(clash)}")
    w.line()
    w.open("public init(protoReader r: ProtoReader)")
    for p in plans:
        if p.kind == "value":
            w.line(f"self.{p.prop} = r.value({p.number})")
        elif p.kind == "optional":
            w.line(f"self.{p.prop} = r.optional({p.number})")
        elif p.kind == "repeated":
            w.line(f"self.{p.prop} = r.repeated({p.number})")
        elif p.kind == "map":
            w.line(f"self.{p.prop} = r.map({p.number})")
        else:
            w.line(f"switch r.oneofCase({p.members[0][1]}) {{")
            for case, number, _ in p.members:
                w.line(f"case {number}: self.{p.prop} = .{case}(r.value({number}))")
            w.line(f"default: self.{p.prop} = nil")
            w.line("}")
    w.close()
    w.line()
    w.open("public func writeFields(to w: ProtoWriter)")
    for p in plans:
        if p.kind == "value":
            w.line(f"w.set({p.number}, self.{p.prop})")
        elif p.kind == "optional":
            w.line(f"w.setOptional({p.number}, self.{p.prop})")
        elif p.kind == "repeated":
            w.line(f"w.setRepeated({p.number}, self.{p.prop})")
        elif p.kind == "map":
            w.line(f"w.setMap({p.number}, self.{p.prop})")
        else:
            w.line(f"switch self.{p.prop} {{")
            for case, number, _ in p.members:
                w.line(f"case .{case}(let v)?: w.set({number}, v)")
            w.line("case nil: break")
            w.line("}")
    w.close()
    w.close()


def emit_service(w, model, package, service):
    full = f"{package}.{service.name}" if package else service.name
    prefix = package_prefix(package)
    base = f"{prefix}_{service.name}" if prefix else service.name
    methods = []
    for m in service.method:
        req = model.swift_names[m.input_type]
        resp = model.swift_names[m.output_type]
        methods.append((m.name, escape(lower_camel(m.name)), req, resp, m.client_streaming, m.server_streaming))

    w.line(f"/// The server side of `{full}`: implement the methods you serve; the rest answer UNIMPLEMENTED.")
    w.open(f"public protocol {base}Provider: RPCServiceProvider")
    for name, swift, req, resp, cs, ss in methods:
        w.line(provider_signature(swift, req, resp, cs, ss))
    w.close()
    w.line()
    w.open(f"extension {base}Provider")
    w.line(f"public var serviceName: String {{ {swift_string(full)} }}")
    w.line()
    w.open("public var methods: [RPCServerMethod]")
    w.line("var methods: [RPCServerMethod] = []")
    for name, swift, req, resp, cs, ss in methods:
        if not cs and not ss:
            w.line(f"methods.append(RPCServerMethod.unary({swift_string(name)}) {{ (request: {req}, context: RPCServerContext) async throws -> {resp} in")
            w.line(f"    try await self.{swift}(request, context: context)")
        elif not cs and ss:
            w.line(f"methods.append(RPCServerMethod.serverStreaming({swift_string(name)}) {{ (request: {req}, responses: RPCWriter<{resp}>, context: RPCServerContext) async throws in")
            w.line(f"    try await self.{swift}(request, responses: responses, context: context)")
        elif cs and not ss:
            w.line(f"methods.append(RPCServerMethod.clientStreaming({swift_string(name)}) {{ (requests: RPCStream<{req}>, context: RPCServerContext) async throws -> {resp} in")
            w.line(f"    try await self.{swift}(requests, context: context)")
        else:
            w.line(f"methods.append(RPCServerMethod.bidirectionalStreaming({swift_string(name)}) {{ (requests: RPCStream<{req}>, responses: RPCWriter<{resp}>, context: RPCServerContext) async throws in")
            w.line(f"    try await self.{swift}(requests, responses: responses, context: context)")
        w.line("})")
    w.line("return methods")
    w.close()
    for name, swift, req, resp, cs, ss in methods:
        w.line()
        w.open("public " + provider_signature(swift, req, resp, cs, ss)[:])
        w.line(f"throw RPCError(code: .unimplemented, message: {swift_string(f'method {name} is not implemented')})")
        w.close()
    w.close()
    w.line()
    w.line(f"/// A typed client for `{full}`.")
    w.open(f"public struct {base}Client: Sendable")
    w.line("public let client: RPCClient")
    w.line()
    w.line("public init(_ client: RPCClient) { self.client = client }")
    for name, swift, req, resp, cs, ss in methods:
        path = swift_string(f"/{full}/{name}")
        w.line()
        if not cs and not ss:
            w.open(f"public func {swift}(_ request: {req}, options: CallOptions = CallOptions()) async throws -> {resp}")
            w.line(f"try await client.unary(path: {path}, request: request, options: options, response: {resp}.self)")
        elif not cs and ss:
            w.line("/// Sends the request and half-closes; read the call's `responses`.")
            w.open(f"public func {swift}(_ request: {req}, options: CallOptions = CallOptions()) async throws -> RPCCall<{req}, {resp}>")
            w.line(f"try await client.serverStreaming(path: {path}, request: request, options: options, response: {resp}.self)")
        else:
            w.line("/// Opens the call: `send` requests, `finishSending`, then read " +
                   ("`response()`." if not ss else "`responses`."))
            w.open(f"public func {swift}(options: CallOptions = CallOptions()) async throws -> RPCCall<{req}, {resp}>")
            w.line(f"try await client.makeCall(path: {path}, options: options, request: {req}.self, response: {resp}.self)")
        w.close()
    w.close()


def provider_signature(swift, req, resp, cs, ss):
    if not cs and not ss:
        return f"func {swift}(_ request: {req}, context: RPCServerContext) async throws -> {resp}"
    if not cs and ss:
        return f"func {swift}(_ request: {req}, responses: RPCWriter<{resp}>, context: RPCServerContext) async throws"
    if cs and not ss:
        return f"func {swift}(_ requests: RPCStream<{req}>, context: RPCServerContext) async throws -> {resp}"
    return f"func {swift}(_ requests: RPCStream<{req}>, responses: RPCWriter<{resp}>, context: RPCServerContext) async throws"


def emit_file(model, f):
    w = Writer()
    w.line(MARKER)
    w.line(f"// Source: {f.name}")
    w.line()
    w.line("import ProtoCore")
    if f.service:
        w.line("import RPCCore")
    scope = "." + f.package if f.package else ""
    for e in f.enum_type:
        w.line()
        emit_enum(w, model, f"{scope}.{e.name}", e, model.swift_names[f"{scope}.{e.name}"])
    for m in f.message_type:
        w.line()
        emit_message(w, model, f"{scope}.{m.name}", m, model.swift_names[f"{scope}.{m.name}"])
    for s in f.service:
        w.line()
        emit_service(w, model, f.package, s)
    return w.text()


