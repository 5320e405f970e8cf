import CZlib

@testable import Protocol

/// Raw DEFLATE made with zlib directly (not through ``Deflater``), input given in pieces so that
/// large inputs (1 GiB of zeros) need no large buffer. Ends with a sync flush and its `00 00 ff ff`
/// removed (RFC 7692 §7.2.1), or with `finish` a final block (BFINAL, §7.2.3.5) left as is.
func zlibRawDeflate(pieces: Int, piece: (Int) -> [UInt8], windowBits: Int32 = 15, level: Int32 = 6, finish: Bool = false) -> [UInt8] {
    var stream = z_stream()
    precondition(cshim_deflateInit2(&stream, level, -windowBits, 8, Z_DEFAULT_STRATEGY) == Z_OK)
    defer { deflateEnd(&stream) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 256 * 1024)
    for i in 0..<pieces {
        var input = piece(i)
        let flush = i == pieces - 1 ? (finish ? Z_FINISH : Z_SYNC_FLUSH) : Z_NO_FLUSH
        input.withUnsafeMutableBufferPointer { inBuf in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = uInt(inBuf.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = uInt(outBuf.count)
                    let rc = deflate(&stream, flush)
                    precondition(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR)
                }
                out.append(contentsOf: chunk[..<(chunk.count - Int(stream.avail_out))])
            } while stream.avail_out == 0
        }
    }
    if !finish {
        precondition(Array(out.suffix(4)) == [0, 0, 0xFF, 0xFF])
        out.removeLast(4)
    }
    return out
}

/// `mebibytes` MiB of zeros compressed (C40's bombs), built once per size and shared by the tests.
func zeroBomb(mebibytes: Int) -> [UInt8] {
    mebibytes == 16 ? zeroBomb16MiB : zeroBomb1GiB
}
private let zeros1MiB = [UInt8](repeating: 0, count: 1 << 20)
private let zeroBomb16MiB = zlibRawDeflate(pieces: 16, piece: { _ in zeros1MiB })
private let zeroBomb1GiB = zlibRawDeflate(pieces: 1024, piece: { _ in zeros1MiB })

/// ``zlibRawDeflate(pieces:piece:windowBits:level:finish:)`` of one buffer.
func zlibRawDeflate(_ data: [UInt8], windowBits: Int32 = 15, finish: Bool = false) -> [UInt8] {
    zlibRawDeflate(pieces: 1, piece: { _ in data }, windowBits: windowBits, finish: finish)
}

/// Inflates a permessage-deflate payload with zlib directly (trailer appended, §7.2.2).
func zlibRawInflate(_ payload: [UInt8]) -> [UInt8]? {
    var stream = z_stream()
    precondition(cshim_inflateInit2(&stream, -15) == Z_OK)
    defer { inflateEnd(&stream) }
    var input = payload + [0, 0, 0xFF, 0xFF]
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    var failed = false
    input.withUnsafeMutableBufferPointer { inBuf in
        stream.next_in = inBuf.baseAddress
        stream.avail_in = uInt(inBuf.count)
        repeat {
            chunk.withUnsafeMutableBufferPointer { outBuf in
                stream.next_out = outBuf.baseAddress
                stream.avail_out = uInt(outBuf.count)
                let rc = inflate(&stream, Z_SYNC_FLUSH)
                if rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR { failed = true }
            }
            out.append(contentsOf: chunk[..<(chunk.count - Int(stream.avail_out))])
        } while !failed && stream.avail_out == 0
    }
    return failed ? nil : out
}

/// A chat message as the gateway sends it: a room envelope around a small JSON object, padded
/// with realistic text to about `size` bytes.
func chatJSON(size: Int, seed: Int = 1) -> [UInt8] {
    let words = [
        "hello", "everyone", "the", "deploy", "is", "done", "and", "metrics", "look", "fine", "ship", "it", "thanks", "see", "you",
        "tomorrow", "room", "lobby", "latency", "p99"
    ]
    var text = ""
    var i = seed
    while text.utf8.count < max(0, size - 170) {
        i = (i &* 1_103_515_245 &+ 12345) & 0x7FFF_FFFF
        text += (text.isEmpty ? "" : " ") + words[i % words.count]
    }
    let json =
        #"{"type":"message","room":"team-42","offset":"1733299200123-17","data":{"id":"m-\#(seed)-8f3a2c","user":"alice@example.com","#
        + #""ts":1733299200123,"text":"\#(text)"}}"#
    return Array(json.utf8)
}

/// Masked client frames of one message compressed as `compressed`, cut into `count` frames, RSV1 on the first.
func compressedClientFrames(_ opcode: Opcode, _ compressed: [UInt8], fragments count: Int = 1, key: UInt32 = 0x37FA_213D) -> [UInt8] {
    let size = max(1, (compressed.count + count - 1) / count)
    var out: [UInt8] = []
    var start = 0
    var index = 0
    repeat {
        let end = min(compressed.count, start + size)
        let last = end == compressed.count
        out += FrameEncoder.frame(
            opcode: index == 0 ? opcode : .continuation, payload: Array(compressed[start..<end]), fin: last,
            maskingKey: key, compressed: index == 0)
        start = end
        index += 1
    } while start < compressed.count
    return out
}
