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
                case .pieceHead?:
                    preconditionFailure("a gathering parser returned a piece's head")
                case .error(let packet)?:
                    var again = VortexResponseParser()
                    precondition((try? again.feed(packet.packet())) == .error(packet), "error round trip")
                case .close?, nil:
                    break
                }
            }
            headFirst(bytes, chunk: chunk)
        }
    }

    /// The same bytes through a parser that stops at a piece's metadata: it must agree with
    /// the gathering one on the metadata, and the content it leaves plus what follows must
    /// be the gathering one's content.
    static func headFirst(_ bytes: [UInt8], chunk: Int) {
        var gathering = VortexResponseParser(maxContent: 1 << 20)
        guard case .piece(let metadata, let content)? = try? gathering.feed(bytes) else { return }
        var parser = VortexResponseParser(maxContent: 1 << 20, gathersContent: false)
        for start in stride(from: 0, to: bytes.count, by: chunk) {
            let end = min(start + chunk, bytes.count)
            guard case .pieceHead(let head, let leftover)? = try? parser.feed(bytes[start..<end]) else { continue }
            precondition(head == metadata, "head metadata")
            let following = leftover + bytes[end...]
            precondition(Array(following.prefix(Int(head.length))) == content, "head content")
            return
        }
        preconditionFailure("a piece the gathering parser read has no head")
    }
}
