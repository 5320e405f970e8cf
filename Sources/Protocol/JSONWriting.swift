/// Appends `value` as a JSON string literal (RFC 8259 §7): '"', '\\' and control characters
/// escaped, everything else copied as UTF-8. Runs of safe bytes are copied in one go.
func appendJSONString(_ value: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    var value = value
    value.withUTF8 { bytes in
        var runStart = 0
        for i in 0..<bytes.count {
            let c = bytes[i]
            if c >= 0x20, c != UInt8(ascii: "\""), c != UInt8(ascii: "\\") { continue }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
            out.append(UInt8(ascii: "\\"))
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(c)
            case 0x0A: out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "t"))
            case 0x08: out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(UInt8(ascii: "f"))
            default:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 0xF)]])
            }
            runStart = i + 1
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
    }
    out.append(UInt8(ascii: "\""))
}

/// Builds one compact JSON object by byte appends, `op` first.
struct JSONObjectWriter {
    private var out: [UInt8]

    init(op: String, capacity: Int = 96) {
        out = []
        out.reserveCapacity(capacity)
        out.append(contentsOf: #"{"op":"#.utf8)
        appendJSONString(op, to: &out)
    }

    private mutating func key(_ name: String) {
        out.append(UInt8(ascii: ","))
        appendJSONString(name, to: &out)
        out.append(UInt8(ascii: ":"))
    }

    mutating func string(_ name: String, _ value: String) {
        key(name)
        appendJSONString(value, to: &out)
    }

    mutating func int(_ name: String, _ value: Int) {
        key(name)
        appendDecimal(value, to: &out)
    }

    mutating func bool(_ name: String, _ value: Bool) {
        key(name)
        out.append(contentsOf: (value ? "true" : "false").utf8)
    }

    mutating func raw(_ name: String, _ value: JSONFragment) {
        key(name)
        out.append(contentsOf: value.bytes)
    }

    consuming func finish() -> [UInt8] {
        out.append(UInt8(ascii: "}"))
        return out
    }
}
