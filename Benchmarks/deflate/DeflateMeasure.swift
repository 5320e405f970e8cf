// Sizes, times and zlib memory of permessage-deflate at Switchboard's settings, for chat-sized
// JSON. Built by Benchmarks/deflate/run.sh with -O over the Protocol sources (no SwiftPM release
// build needed). Times are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID, so time spent waiting
// for a core on a busy machine is left out), medians of several rounds.
import Glibc

@main
struct DeflateMeasure {
    /// Room messages as the gateway sends them: envelope + a chat payload with ordinary English text.
    static let texts = [
        "Morning all! The staging deploy finished at 07:40 and the smoke tests are green.",
        "Can someone review PR 1182 before lunch? It touches the reconnect backoff, so a second pair of eyes would help.",
        "Latency on eu-west went up to 180 ms p99 around 9:15; looks like the Redis failover, it recovered after two minutes.",
        "I'll be out Thursday afternoon, Priya is covering on-call. Ping her directly if the pager goes off.",
        "Reminder: retro at 4pm in the usual room, bring one thing that went well and one thing we should stop doing.",
        "Pushed a fix for the flaky drain test. The timer wheel was rounding the deadline down instead of up, so it fired one tick early."
    ]

    static func message(size: Int, seed: Int) -> [UInt8] {
        var text = ""
        var i = seed
        while text.utf8.count < size - 176 {
            text += (text.isEmpty ? "" : " ") + texts[i % texts.count]
            i += 1
        }
        text = String(text.utf8.prefix(max(0, size - 176)))!
        let json =
            #"{"type":"message","room":"team-platform","offset":"1733299200123-\#(1000 + seed)","data":{"id":"01JE4Q\#(seed)K7X2M9","#
            + #""user":{"id":"u_48213","name":"Alice Martin"},"ts":1733299200123,"text":"\#(text)"}}"#
        return Array(json.utf8)
    }

    /// `value` right-aligned in `width` columns (left-aligned for a negative width).
    static func pad(_ value: Any, _ width: Int) -> String {
        let text = "\(value)"
        let fill = String(repeating: " ", count: max(0, abs(width) - text.count))
        return width < 0 ? text + fill : fill + text
    }

    static func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

    static func cpuNanoseconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) * 1e9 + Double(ts.tv_nsec)
    }

    static func nsPerOp(rounds: Int = 7, iterations: Int, _ body: () -> Void) -> Double {
        var results: [Double] = []
        for _ in 0..<rounds {
            let start = cpuNanoseconds()
            for _ in 0..<iterations { body() }
            results.append((cpuNanoseconds() - start) / Double(iterations))
        }
        return median(results)
    }

    static func main() {
        print(
            "zlib memory: Deflater(window 15, memLevel 8) \(Deflater().zlibBytes) B; memLevel 4: \(Deflater(memoryLevel: 4).zlibBytes) B; window 9 memLevel 1: \(Deflater(windowBits: 9, memoryLevel: 1).zlibBytes) B"
        )
        let inflater = Inflater()
        let before = inflater.zlibBytes
        _ = try? inflater.inflate(Deflater().compress(message(size: 1024, seed: 0)), limit: 1 << 20)
        print("zlib memory: Inflater(window 15) \(before) B before first use, \(inflater.zlibBytes) B after; output buffer kept \(inflater.bufferBytes) B")
        print("")
        print("size  settings            plain  compressed  ratio  frame-plain frame-compressed  compress-ns  inflate-ns")
        for size in [200, 1024] {
            let msgs = (0..<6).map { message(size: size, seed: $0) }
            for (label, deflater) in [
                ("level6 memLevel8", Deflater()), ("level6 memLevel4", Deflater(memoryLevel: 4)), ("level1 memLevel8", Deflater(level: 1))
            ] {
                let compressed = msgs.map { deflater.compress($0) }
                let plain = msgs.map(\.count).reduce(0, +) / msgs.count
                let comp = compressed.map(\.count).reduce(0, +) / msgs.count
                let framePlain = plain + FrameEncoder.headerSize(payloadLength: plain, masked: false)
                let frameComp = comp + FrameEncoder.headerSize(payloadLength: comp, masked: false)
                var k = 0
                let cns = nsPerOp(iterations: 20_000) {
                    k &+= 1
                    let c = msgs[k % msgs.count].withUnsafeBytes { deflater.compress($0) }
                    precondition(!c.isEmpty)
                }
                let inf = Inflater()
                var total = 0
                let ins = nsPerOp(iterations: 20_000) {
                    k &+= 1
                    total &+= compressed[k % compressed.count].withUnsafeBytes { raw in
                        (try? inf.inflate(raw, limit: 1 << 20) { $0.count }) ?? 0
                    }
                }
                precondition(total > 0)
                let ratio = (Double(plain) / Double(comp) * 100).rounded() / 100
                print(
                    [
                        pad(size, 4), pad(label, -18), pad(plain, 6), pad(comp, 10), pad(ratio, 5), pad(framePlain, 11), pad(frameComp, 16),
                        pad(Int(cns), 11), pad(Int(ins), 10)
                    ].joined(separator: "  "))
            }
        }
        // A reader (server role) with the shared Inflater versus without deflate, per 1 KiB message.
        let msg = message(size: 1024, seed: 3)
        let compressedFrame = FrameEncoder.frame(opcode: .text, payload: Deflater().compress(msg), maskingKey: 0x1234_5678, compressed: true)
        let plainFrame = FrameEncoder.frame(opcode: .text, payload: msg, maskingKey: 0x1234_5678)
        let shared = Inflater()
        var delivered = 0
        for (label, frame, deflate) in [
            ("plain frame, no deflate", plainFrame, nil as Inflater?), ("compressed frame, shared Inflater", compressedFrame, shared)
        ] {
            var reader = WebSocketReader(role: .server, maxMessageSize: 1 << 20, deflate: deflate)
            var copy = frame
            let ns = nsPerOp(iterations: 20_000) {
                copy = frame
                copy.withUnsafeMutableBytes { raw in
                    try! reader.feed(raw) { event in
                        if case .text(let t) = event { delivered &+= t.count }; return true
                    }
                }
            }
            print("reader, 1 KiB text, \(label): \(Int(ns)) ns/message")
        }
        precondition(delivered > 0)
    }
}
