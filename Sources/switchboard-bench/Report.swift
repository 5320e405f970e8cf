import Foundation
import Runtime

/// The bench's one report printer: ordered key/value figures printed as aligned human-readable lines and
/// as a one-line JSON object (`{"scenario":…, key: value, …}`), the line scripts record.
struct Report {
    enum Value {
        case int(Int)
        case double(Double, decimals: Int)
        case string(String)
        case bool(Bool)
    }

    let scenario: String
    private(set) var items: [(key: String, value: Value, unit: String?)] = []
    /// Free-form remarks printed under the figures (not in the JSON).
    private(set) var notes: [String] = []

    init(scenario: String) { self.scenario = scenario }

    mutating func add(_ key: String, _ value: Int, unit: String? = nil) { items.append((key, .int(value), unit)) }
    mutating func add(_ key: String, _ value: Double, unit: String? = nil, decimals: Int = 1) {
        items.append((key, .double(value.isFinite ? value : 0, decimals: decimals), unit))
    }
    mutating func add(_ key: String, _ value: String) { items.append((key, .string(value), nil)) }
    mutating func add(_ key: String, _ value: Bool) { items.append((key, .bool(value), nil)) }
    mutating func note(_ text: String) { notes.append(text) }

    /// Adds every item of `other` with `prefix` on its key.
    mutating func append(_ other: Report, prefix: String) {
        for item in other.items { items.append((prefix + item.key, item.value, item.unit)) }
    }

    private static func text(_ v: Value) -> String {
        switch v {
        case .int(let i): String(i)
        case .double(let d, let decimals): String(format: "%.\(decimals)f", d)
        case .string(let s): s
        case .bool(let b): b ? "true" : "false"
        }
    }

    private static func jsonText(_ v: Value) -> String {
        switch v {
        case .string(let s):
            let data = (try? JSONSerialization.data(withJSONObject: [s], options: [])) ?? Data("[\"\"]".utf8)
            return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
        default: return text(v)
        }
    }

    var humanText: String {
        var out = "== \(scenario) ==\n"
        let width = (items.map { $0.key.count }.max() ?? 0) + 2
        for item in items {
            let unit = item.unit.map { " \($0)" } ?? ""
            out += "  " + item.key.padding(toLength: width, withPad: " ", startingAt: 0) + Report.text(item.value) + unit + "\n"
        }
        for n in notes { out += "  note: \(n)\n" }
        return out
    }

    var jsonLine: String {
        var parts = ["\"scenario\":\(Report.jsonText(.string(scenario)))"]
        for item in items { parts.append("\(Report.jsonText(.string(item.key))):\(Report.jsonText(item.value))") }
        return "{" + parts.joined(separator: ",") + "}"
    }

    /// Human lines (unless `jsonOnly`), then the JSON line, on stdout.
    func emit(jsonOnly: Bool) {
        if !jsonOnly { print(humanText, terminator: "") }
        print(jsonLine)
        fflush(nil)
    }
}
