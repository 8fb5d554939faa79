import GeneratedAPI
import ProtoCore

/// What both reflection versions answer, independent of their (identical) message types.
struct ReflectionCore: Sendable {
    enum Answer {
        case files([[UInt8]])
        case services([String])
        case extensionNumbers(type: String, numbers: [Int32])
        case error(code: Int32, message: String)
    }

    enum Question {
        case fileByFilename(String)
        case fileContainingSymbol(String)
        case fileContainingExtension(type: String, number: Int32)
        case allExtensionNumbersOfType(String)
        case listServices
    }

    let serviceNames: [String]
    let table: ProtoFileTable

    static let notFound: Int32 = 5
    static let invalidArgument: Int32 = 3

    func answer(_ question: Question?) -> Answer {
        switch question {
        case .listServices:
            return .services(serviceNames)
        case .fileByFilename(let name):
            guard let file = table.file(named: name) else {
                return .error(code: Self.notFound, message: "file not found: \(name)")
            }
            return .files(table.withDependencies(file).map(\.serializedDescriptor))
        case .fileContainingSymbol(let symbol):
            guard let file = table.file(containingSymbol: symbol) else {
                return .error(code: Self.notFound, message: "symbol not found: \(symbol)")
            }
            return .files(table.withDependencies(file).map(\.serializedDescriptor))
        case .fileContainingExtension(let type, let number):
            // None of our protos declare extensions.
            return .error(code: Self.notFound, message: "extension \(number) of \(type) not found")
        case .allExtensionNumbersOfType(let type):
            guard table.file(containingSymbol: type) != nil else {
                return .error(code: Self.notFound, message: "type not found: \(type)")
            }
            return .extensionNumbers(type: type, numbers: [])
        case nil:
            return .error(code: Self.invalidArgument, message: "empty reflection request")
        }
    }
}
