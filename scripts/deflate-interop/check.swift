// Switchboard side of scripts/deflate-interop/run.sh: negotiates the offer ws made and compresses
// with Deflater (prints the response value, "Hello" and the chat text compressed, as hex), or
// inflates what ws compressed and compares it.
@main struct Check {
    static func main() throws {
        let args = CommandLine.arguments
        if args.count > 2, args[1] == "inflate" {
            let hexText = Array(args[2].utf8)
            var bytes: [UInt8] = []
            var i = 0
            while i + 1 < hexText.count { bytes.append(UInt8(String(decoding: hexText[i...i + 1], as: UTF8.self), radix: 16)!); i += 2 }
            let out = try Inflater().inflate(bytes, limit: 1 << 20)
            print(String(decoding: out, as: UTF8.self) == args[3] ? "switchboard inflated ws's message: equal" : "MISMATCH")
            return
        }
        let agreed = PerMessageDeflate.negotiate(HTTPHeaders([HTTPHeader("Sec-WebSocket-Extensions", args[1])]))!
        let text = args[2]
        func hex(_ b: [UInt8]) -> String { b.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }
        print(agreed.responseValue)
        print(hex(Deflater().compress(Array("Hello".utf8))))
        print(hex(Deflater().compress(Array(text.utf8))))
    }
}
