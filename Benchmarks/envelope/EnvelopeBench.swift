// Micro-benchmark of client envelope decoding (issue 11, "bounded work per frame"), built by
// Benchmarks/envelope-scan.sh together with the Protocol sources. For each payload it prints the
// best-of-N time per byte of: a memcpy of the frame (the yardstick), the JSONSerialization path the
// gateway used before (parse the whole frame into a tree, then rewrite `data` compactly), and
// Envelope.decodeWithID (the single-pass scanner).
import Foundation

@main
enum EnvelopeBench {
    static func main() {
        let mib = 1 << 20
        func publish(_ data: String) -> [UInt8] { Array(#"{"op":"publish","room":"r","data":"#.utf8) + Array(data.utf8) + [0x7D] }
        func array(of element: String, filling size: Int) -> String {
            let count = (size - 40) / (element.utf8.count + 1)
            return "[" + Array(repeating: element, count: count).joined(separator: ",") + "]"
        }
        let chat = Array(
            #"{"op":"publish","room":"lobby","data":{"text":"hello, how are you doing today?","user":"alice","ts":1733299200000},"id":"m-42"}"#.utf8)
        let payloads: [(String, [UInt8])] = [
            ("1 MiB [0,0,...]", publish(array(of: "0", filling: mib))),
            ("1 MiB [{},{},...]", publish(array(of: "{}", filling: mib))),
            ("1 MiB string", publish("\"" + String(repeating: "lorem ipsum ", count: mib / 12) + "\"")),
            ("chat message (\(chat.count) B)", chat)
        ]
        let budget = Double(ProcessInfo.processInfo.environment["BUDGET_MS"] ?? "300")! / 1000
        print("payload                       bytes     memcpy ns/B  JSONSerialization ns/B  scanner ns/B  scanner/memcpy  speed-up")
        let only = ProcessInfo.processInfo.environment["ONLY"]
        for (name, bytes) in payloads where only.map({ name.hasPrefix($0) }) ?? true {
            let copy = measure(bytes, budget: budget) { raw in
                let out = [UInt8](unsafeUninitializedCapacity: raw.count) { buffer, n in
                    buffer.baseAddress!.update(from: raw.baseAddress!.assumingMemoryBound(to: UInt8.self), count: raw.count)
                    n = raw.count
                }
                return out.count
            }
            let before =
                ProcessInfo.processInfo.environment["SKIP_BEFORE"] != nil
                ? .nan
                : measure(bytes, budget: budget) { raw in
                    guard let object = JSONValue.parse(raw) as? [String: Any] else { fatalError("bad payload") }
                    return JSONValue.fragment(object["data"]!)!.bytes.count
                }
            let after = measure(bytes, budget: budget) { raw in
                guard case .publish(_, let data, _) = try! Envelope.decodeWithID(raw).request else { fatalError("bad payload") }
                return data.bytes.count
            }
            let n = Double(bytes.count)
            print(
                name.padding(toLength: 28, withPad: " ", startingAt: 0),
                String(bytes.count).leftPad(8),
                fmt(copy / n * 1e9).leftPad(14), fmt(before / n * 1e9).leftPad(23), fmt(after / n * 1e9).leftPad(13),
                fmt(after / copy).leftPad(15) + "x", fmt(before / after).leftPad(8) + "x")
        }
    }

    /// Best time in seconds of one call of `body`, over repeats filling about `budget` seconds (at least 3).
    static func measure(_ bytes: [UInt8], budget: Double, _ body: (UnsafeRawBufferPointer) -> Int) -> Double {
        var best = Double.infinity
        var sink = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var runs = 0
        // Small payloads are timed in batches, so the clock reads do not dominate.
        let batch = max(1, 65_536 / max(1, bytes.count))
        bytes.withUnsafeBytes { raw in
            while runs < 3 || (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < budget && runs < 100_000) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<batch { sink &+= body(raw) }
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(batch))
                runs += 1
            }
        }
        if sink == 42 { print("") }
        return best
    }

    static func fmt(_ x: Double) -> String { String(format: x < 10 ? "%.3f" : "%.1f", x) }
}

extension String {
    func leftPad(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
