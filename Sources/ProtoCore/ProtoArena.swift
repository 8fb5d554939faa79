/// Owns every C allocation made while building one message for packing, and frees them
/// all at once in `deinit`: protobuf-c only reads the tree, so no piece needs its own
/// lifetime, and one owner makes a leak impossible to write in the field code.
final class ProtoArena {
    /// Small allocations are carved from blocks of this size; larger ones get their own.
    private static let blockSize = 4096
    private static let alignment = 16

    private var blocks: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0

    init() {}

    deinit {
        for block in blocks { block.deallocate() }
    }

    /// Uninitialized memory aligned for any C scalar or pointer.
    func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let size = (Swift.max(byteCount, 1) + Self.alignment - 1) & ~(Self.alignment - 1)
        if size > Self.blockSize / 4 {
            let own = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: Self.alignment)
            blocks.append(own)
            return own
        }
        if size > remaining || cursor == nil {
            let block = UnsafeMutableRawPointer.allocate(byteCount: Self.blockSize, alignment: Self.alignment)
            blocks.append(block)
            cursor = block
            remaining = Self.blockSize
        }
        let start = cursor.unsafelyUnwrapped
        cursor = start + size
        remaining -= size
        return start
    }

    /// A NUL-terminated copy, as protobuf-c expects `char *` strings.
    func cString(_ string: String) -> UnsafeMutablePointer<CChar> {
        var string = string
        return string.withUTF8 { utf8 in
            let raw = allocate(byteCount: utf8.count + 1)
            if let source = utf8.baseAddress {
                raw.copyMemory(from: source, byteCount: utf8.count)
            }
            raw.storeBytes(of: 0, toByteOffset: utf8.count, as: UInt8.self)
            return raw.bindMemory(to: CChar.self, capacity: utf8.count + 1)
        }
    }

    /// A copy of `bytes`, or nil when empty (protobuf-c reads no data for length 0).
    func bytes(_ bytes: [UInt8]) -> UnsafeMutablePointer<UInt8>? {
        guard !bytes.isEmpty else { return nil }
        let raw = allocate(byteCount: bytes.count)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { raw.copyMemory(from: base, byteCount: source.count) }
        }
        return raw.bindMemory(to: UInt8.self, capacity: bytes.count)
    }
}
