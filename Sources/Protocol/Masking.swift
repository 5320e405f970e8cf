/// XOR `buffer` with the 4-byte masking key (big-endian UInt32 as it appears on the wire), starting at key
/// phase `phase` (0...3); returns the phase for the next byte. Fast: 8 bytes at a time.
///
/// RFC 6455 §5.3: byte i of the payload is XORed with key byte (i mod 4). Masking and unmasking
/// are the same operation. A payload unmasked in several pieces passes the returned phase on.
@inlinable
public func applyMask(_ maskingKey: UInt32, to buffer: UnsafeMutableRawBufferPointer, phase: Int = 0) -> Int {
    let count = buffer.count
    guard count > 0, let base = buffer.baseAddress else { return phase & 3 }
    let start = phase & 3
    // The key bytes in wire order, rotated so the first byte of `buffer` uses key byte `start`.
    let rotated = maskingKey.rotateLeft(by: start * 8)
    let keyBytes = rotated.bigEndian  // memory order = wire order
    let word = UInt64(keyBytes) | UInt64(keyBytes) << 32
    var i = 0
    while i &+ 8 <= count {
        let value = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        base.storeBytes(of: value ^ word, toByteOffset: i, as: UInt64.self)
        i &+= 8
    }
    while i < count {
        let keyByte = UInt8(truncatingIfNeeded: maskingKey >> UInt32(24 &- 8 &* ((start &+ i) & 3)))
        base.storeBytes(of: base.load(fromByteOffset: i, as: UInt8.self) ^ keyByte, toByteOffset: i, as: UInt8.self)
        i &+= 1
    }
    return (start &+ count) & 3
}

extension UInt32 {
    @usableFromInline
    func rotateLeft(by bits: Int) -> UInt32 {
        bits == 0 ? self : (self << UInt32(bits)) | (self >> UInt32(32 - bits))
    }
}
