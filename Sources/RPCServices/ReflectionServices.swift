import GeneratedAPI
import ProtoCore
import RPCCore

/// Server reflection, as `grpc.reflection.v1.ServerReflection` or, for clients that
/// only know the older name, `grpc.reflection.v1alpha.ServerReflection`. The two versions'
/// messages are identical on the wire (same fields and numbers; only the package
/// differs), so one implementation over the v1 types serves both.
public struct ReflectionService: RPCServiceProvider {
    public enum Version: String, Sendable {
        case v1 = "grpc.reflection.v1.ServerReflection"
        case v1alpha = "grpc.reflection.v1alpha.ServerReflection"
    }

    public let serviceName: String
    let core: ReflectionCore

    public init(_ version: Version, serviceNames: [String], table: ProtoFileTable = ProtoFileRegistry.table) {
        serviceName = version.rawValue
        core = ReflectionCore(serviceNames: serviceNames, table: table)
    }

    public var methods: [RPCServerMethod] {
        let core = self.core
        return [.bidirectionalStreaming("ServerReflectionInfo") {
            (requests: RPCStream<Grpc_Reflection_V1_ServerReflectionRequest>,
             responses: RPCWriter<Grpc_Reflection_V1_ServerReflectionResponse>, _) in
            for try await request in requests {
                try await responses.write(Self.respond(to: request, core))
            }
        }]
    }

    static func respond(to request: Grpc_Reflection_V1_ServerReflectionRequest,
                        _ core: ReflectionCore) -> Grpc_Reflection_V1_ServerReflectionResponse {
        let question: ReflectionCore.Question? = switch request.messageRequest {
        case .fileByFilename(let n)?: .fileByFilename(n)
        case .fileContainingSymbol(let s)?: .fileContainingSymbol(s)
        case .fileContainingExtension(let e)?: .fileContainingExtension(type: e.containingType, number: e.extensionNumber)
        case .allExtensionNumbersOfType(let t)?: .allExtensionNumbersOfType(t)
        case .listServices?: .listServices
        case nil: nil
        }
        var response = Grpc_Reflection_V1_ServerReflectionResponse()
        response.validHost = request.host
        response.originalRequest = request
        switch core.answer(question) {
        case .files(let files):
            var r = Grpc_Reflection_V1_FileDescriptorResponse()
            r.fileDescriptorProto = files
            response.messageResponse = .fileDescriptorResponse(r)
        case .services(let names):
            var r = Grpc_Reflection_V1_ListServiceResponse()
            r.service = names.map { name in Grpc_Reflection_V1_ServiceResponse.with { $0.name = name } }
            response.messageResponse = .listServicesResponse(r)
        case .extensionNumbers(let type, let numbers):
            var r = Grpc_Reflection_V1_ExtensionNumberResponse()
            r.baseTypeName = type
            r.extensionNumber = numbers
            response.messageResponse = .allExtensionNumbersResponse(r)
        case .error(let code, let message):
            var r = Grpc_Reflection_V1_ErrorResponse()
            r.errorCode = code
            r.errorMessage = message
            response.messageResponse = .errorResponse(r)
        }
        return response
    }
}

/// Health and reflection (v1 and v1alpha) for a server hosting `services`: every server
/// of ours adds these, so stock tools can see and probe it.
public enum StandardServices {
    public static func make(for services: [any RPCServiceProvider]) -> (health: HealthService, all: [any RPCServiceProvider]) {
        let own = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]
        let names = services.map(\.serviceName) + own
        let health = HealthService(services: names)
        let all: [any RPCServiceProvider] = services + [
            health, ReflectionService(.v1, serviceNames: names), ReflectionService(.v1alpha, serviceNames: names),
        ]
        return (health, all)
    }
}
