import GeneratedAPI
import ProtoCore
import RPCCore

/// `grpc.reflection.v1.ServerReflection`.
public struct ReflectionServiceV1: Grpc_Reflection_V1_ServerReflectionProvider {
    let core: ReflectionCore

    public init(serviceNames: [String], table: ProtoFileTable = ProtoFileRegistry.table) {
        core = ReflectionCore(serviceNames: serviceNames, table: table)
    }

    public func serverReflectionInfo(_ requests: RPCStream<Grpc_Reflection_V1_ServerReflectionRequest>,
                                     responses: RPCWriter<Grpc_Reflection_V1_ServerReflectionResponse>,
                                     context: RPCServerContext) async throws {
        for try await request in requests {
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
                r.service = names.map { var s = Grpc_Reflection_V1_ServiceResponse(); s.name = $0; return s }
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
            try await responses.write(response)
        }
    }
}

/// `grpc.reflection.v1alpha.ServerReflection`, for clients that only know the old name.
public struct ReflectionServiceV1Alpha: Grpc_Reflection_V1alpha_ServerReflectionProvider {
    let core: ReflectionCore

    public init(serviceNames: [String], table: ProtoFileTable = ProtoFileRegistry.table) {
        core = ReflectionCore(serviceNames: serviceNames, table: table)
    }

    public func serverReflectionInfo(_ requests: RPCStream<Grpc_Reflection_V1alpha_ServerReflectionRequest>,
                                     responses: RPCWriter<Grpc_Reflection_V1alpha_ServerReflectionResponse>,
                                     context: RPCServerContext) async throws {
        for try await request in requests {
            let question: ReflectionCore.Question? = switch request.messageRequest {
            case .fileByFilename(let n)?: .fileByFilename(n)
            case .fileContainingSymbol(let s)?: .fileContainingSymbol(s)
            case .fileContainingExtension(let e)?: .fileContainingExtension(type: e.containingType, number: e.extensionNumber)
            case .allExtensionNumbersOfType(let t)?: .allExtensionNumbersOfType(t)
            case .listServices?: .listServices
            case nil: nil
            }
            var response = Grpc_Reflection_V1alpha_ServerReflectionResponse()
            response.validHost = request.host
            response.originalRequest = request
            switch core.answer(question) {
            case .files(let files):
                var r = Grpc_Reflection_V1alpha_FileDescriptorResponse()
                r.fileDescriptorProto = files
                response.messageResponse = .fileDescriptorResponse(r)
            case .services(let names):
                var r = Grpc_Reflection_V1alpha_ListServiceResponse()
                r.service = names.map { var s = Grpc_Reflection_V1alpha_ServiceResponse(); s.name = $0; return s }
                response.messageResponse = .listServicesResponse(r)
            case .extensionNumbers(let type, let numbers):
                var r = Grpc_Reflection_V1alpha_ExtensionNumberResponse()
                r.baseTypeName = type
                r.extensionNumber = numbers
                response.messageResponse = .allExtensionNumbersResponse(r)
            case .error(let code, let message):
                var r = Grpc_Reflection_V1alpha_ErrorResponse()
                r.errorCode = code
                r.errorMessage = message
                response.messageResponse = .errorResponse(r)
            }
            try await responses.write(response)
        }
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
            health, ReflectionServiceV1(serviceNames: names), ReflectionServiceV1Alpha(serviceNames: names),
        ]
        return (health, all)
    }
}
