import VortexProtocol

/// Vortex packets as a parent reads them (requests) and as a child reads them (answers),
/// fed in chunks whose sizes come from the input. Whatever decodes must encode back to a
/// packet that decodes to the same thing.
enum VortexTarget {
    static func run(_ input: UnsafeRawBufferPointer) {
        guard let mode = input.first else { return }
        let bytes = Array(input.dropFirst())
        let chunk = max(1, Int(mode >> 1) % 97)
        if mode & 1 == 0 {
            var parser = VortexRequestParser()
            for start in stride(from: 0, to: bytes.count, by: chunk) {
                guard let requests = try? parser.feed(bytes[start..<min(start + chunk, bytes.count)]) else { return }
                for case .downloadPiece(let request) in requests {
                    var again = VortexRequestParser()
                    let packet = try? request.packet()
                    precondition(packet.flatMap { try? again.feed($0) } == [.downloadPiece(request)], "request round trip")
                }
            }
        } else {
            var parser = VortexResponseParser(maxContent: 1 << 20)
            for start in stride(from: 0, to: bytes.count, by: chunk) {
                let response: VortexResponseParser.Response?
                do { response = try parser.feed(bytes[start..<min(start + chunk, bytes.count)]) } catch { return }
                switch response {
                case .piece(let metadata, let content)?:
                    precondition(content.count == Int(metadata.length), "piece length")
                    var again = VortexResponseParser(maxContent: 1 << 20)
                    precondition((try? again.feed(metadata.packetHead() + content)) == .piece(metadata, content), "piece round trip")
                case .error(let packet)?:
                    var again = VortexResponseParser()
                    precondition((try? again.feed(packet.packet())) == .error(packet), "error round trip")
                case .close?, nil:
                    break
                }
            }
        }
    }
}
