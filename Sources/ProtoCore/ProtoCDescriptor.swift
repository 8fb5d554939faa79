internal import CProtobufC

/// A protobuf-c message descriptor: the runtime description of one generated C struct
/// (field offsets, labels, types), which is all the reader and writer go by.
public struct ProtoCDescriptor: @unchecked Sendable, Hashable {
    // Points into the static data of the generated C sources: immutable and immortal.
    let pointer: UnsafePointer<ProtobufCMessageDescriptor>

    init(_ pointer: UnsafePointer<ProtobufCMessageDescriptor>) { self.pointer = pointer }

    /// The fully qualified protobuf name, e.g. `common.v2.Peer`.
    public var fullName: String { String(cString: pointer.pointee.name) }
}

/// Every message descriptor the C target was generated with, by full name.
///
/// The generated registry hands over an untyped table so the C target's headers need not
/// be imported here; each entry is checked against the descriptor magic before use.
public struct ProtoCDescriptorTable: Sendable {
    private let byName: [String: ProtoCDescriptor]

    public init(descriptors: UnsafePointer<UnsafeRawPointer?>?, count: Int) {
        var byName: [String: ProtoCDescriptor] = [:]
        if let descriptors {
            for index in 0..<count {
                guard let raw = descriptors[index] else { continue }
                let descriptor = raw.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
                precondition(descriptor.pointee.magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
                             "entry \(index) of the C descriptor table is not a message descriptor")
                let wrapped = ProtoCDescriptor(descriptor)
                byName[wrapped.fullName] = wrapped
            }
        }
        self.byName = byName
    }

    public func descriptor(named name: String) -> ProtoCDescriptor? { byName[name] }

    /// The descriptor a generated type was made for; its absence means the Swift and C
    /// halves were generated from different protos, which no input can cause.
    public subscript(name: String) -> ProtoCDescriptor {
        guard let descriptor = byName[name] else {
            preconditionFailure("no protobuf-c descriptor for \(name): regenerate with tools/generate.sh")
        }
        return descriptor
    }

    public var names: [String] { byName.keys.sorted() }
}
