import Testing
import ProtoCore
@testable import GeneratedAPI

@Suite struct RegistryTests {
    @Test func everyGeneratedFileIsListedWithItsSymbols() throws {
        let names = ProtoFileRegistry.table.files.map(\.name)
        for expected in ["dragonfly/scheduler/v2/scheduler.proto", "google/protobuf/descriptor.proto",
                         "grpc/reflection/v1alpha/reflection.proto", "google/protobuf/empty.proto"] {
            #expect(names.contains(expected))
        }
        #expect(ProtoFileRegistry.file(containingSymbol: "scheduler.v2.Scheduler")?.name == "dragonfly/scheduler/v2/scheduler.proto")
        #expect(ProtoFileRegistry.file(containingSymbol: "scheduler.v2.Scheduler.AnnouncePeer")?.name == "dragonfly/scheduler/v2/scheduler.proto")
        #expect(ProtoFileRegistry.file(containingSymbol: ".common.v2.Task")?.name == "dragonfly/common/v2/common.proto")
        #expect(ProtoFileRegistry.file(containingSymbol: "grpc.health.v1.HealthCheckResponse.ServingStatus")?.name == "grpc/health/v1/health.proto")
        #expect(ProtoFileRegistry.file(containingSymbol: "no.such.Symbol") == nil)
        #expect(ProtoFileRegistry.serviceNames.contains("dfdaemon.v2.DfdaemonDownload"))
        #expect(ProtoFileRegistry.serviceNames.contains("grpc.reflection.v1.ServerReflection"))
    }

    /// The descriptors were serialized by the official Python protobuf; decoding them with
    /// our descriptor.proto types and re-encoding must give the same bytes.
    @Test func descriptorsDecodeWithOurOwnTypesAndReencodeIdentically() throws {
        for file in ProtoFileRegistry.table.files {
            let descriptor = try Google_Protobuf_FileDescriptorProto(serializedBytes: file.serializedDescriptor)
            #expect(descriptor.name == file.name)
            #expect(descriptor.dependency == file.dependencies)
            #expect(descriptor.sourceCodeInfo == nil)
            #expect(descriptor.serializedBytes() == file.serializedDescriptor, "\(file.name)")
        }
    }

    @Test func schedulerDescriptorDescribesAnnouncePeerAsBidirectional() throws {
        let file = try #require(ProtoFileRegistry.file(named: "dragonfly/scheduler/v2/scheduler.proto"))
        let descriptor = try Google_Protobuf_FileDescriptorProto(serializedBytes: file.serializedDescriptor)
        let method = try #require(descriptor.service.first { $0.name == "Scheduler" }?.method.first { $0.name == "AnnouncePeer" })
        #expect(method.clientStreaming == true)
        #expect(method.serverStreaming == true)
        #expect(method.inputType == ".scheduler.v2.AnnouncePeerRequest")
    }

    @Test func dependenciesAreClosedOver() throws {
        let file = try #require(ProtoFileRegistry.file(named: "dragonfly/scheduler/v2/scheduler.proto"))
        let names = ProtoFileRegistry.table.withDependencies(file).map(\.name)
        #expect(names.first == file.name)
        #expect(names.contains("dragonfly/common/v2/common.proto"))
        #expect(names.contains("google/protobuf/timestamp.proto"))
        #expect(Set(names).count == names.count)
    }

    @Test func everyCDescriptorIsFoundByName() {
        #expect(CProtosDescriptors.table.names.count > 200)
        #expect(CProtosDescriptors.table.descriptor(named: "common.v2.Peer")?.fullName == "common.v2.Peer")
        #expect(CProtosDescriptors.table.descriptor(named: "common.v2.Task.RequestHeaderEntry") != nil)
    }
}
