import GeneratedAPI
import ProtoCore
import ProtoJSON
import RPCCore

/// What `call` prints on stdout. Plain: each response as JSON. Verbose: grpcurl -v's
/// layout, so scripts and eyes used to it find the same headings.
final class CallOutput {
    let verbose: Bool
    let decoder: DynamicDecoder
    let outputType: String
    private(set) var received = 0

    init(verbose: Bool, decoder: DynamicDecoder, outputType: String) {
        self.verbose = verbose
        self.decoder = decoder
        self.outputType = outputType
    }

    func start(method: Google_Protobuf_MethodDescriptorProto, index: DescriptorIndex, metadata: Metadata) {
        guard verbose else { return }
        var printer = ProtoPrinter(index: index)
        printer.method(method)
        print("\nResolved method descriptor:\n\(printer.text)")
        print("\nRequest metadata to send:\n\(Self.text(metadata))")
    }

    func headers(_ metadata: Metadata) {
        print("\nResponse headers received:\n\(Self.text(metadata))")
    }

    func response(_ bytes: [UInt8]) throws {
        received += 1
        if verbose { print("\nResponse contents:") }
        print(try decoder.decode(bytes, as: outputType).rendered())
    }

    func trailers(_ metadata: Metadata) {
        print("\nResponse trailers received:\n\(Self.text(metadata))")
    }

    func finish(requests: Int) {
        guard verbose else { return }
        print("Sent \(requests) request\(requests == 1 ? "" : "s") and received \(received) response\(received == 1 ? "" : "s")")
    }

    /// `name: value` lines sorted by name (values of one name in arrival order), binary
    /// values in base64, "(empty)" for none: grpcurl's MetadataToString.
    static func text(_ metadata: Metadata) -> String {
        var byKey: [String: [String]] = [:]
        for entry in metadata {
            switch entry.value {
            case .string(let s): byKey[entry.key, default: []].append(s)
            case .binary(let b): byKey[entry.key, default: []].append(Base64.encode(b))
            }
        }
        if byKey.isEmpty { return "(empty)" }
        return byKey.keys.sorted().flatMap { key in (byKey[key] ?? []).map { "\(key): \($0)" } }.joined(separator: "\n")
    }
}
