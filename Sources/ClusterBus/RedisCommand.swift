import Runtime

/// One Redis command encoded as RESP (`*N\r\n$len\r\narg\r\n…`), binary-safe, ready for a
/// `RedisConnection`'s socket queue.
///
/// Built argument by argument into a single buffer sized up front, so a publish costs one allocation.
/// `name` (the first argument) is kept for logs and metrics.
///
/// The buffer always ends with a NUL byte that is not sent (a leftover of hiredis 0.14's async layer, which
/// scanned formatted commands with `strchr`; harmless, and `withFormatted` keeps its C-string contract).
public struct RedisCommand: Sendable, Equatable {
    /// The RESP bytes plus the NUL terminator (not sent).
    private(set) var storage: [UInt8]
    /// The RESP bytes sent to the server.
    public var bytes: [UInt8] { Array(storage.dropLast()) }
    /// The command name, e.g. `"EVALSHA"`.
    public let name: String
    private var remaining: Int

    /// Starts a command of exactly `argumentCount` arguments (the name included); `capacity` is a size hint
    /// in bytes for the arguments' payload.
    public init(_ name: String, argumentCount: Int, capacity: Int = 64) {
        precondition(argumentCount >= 1, "a command has at least its name")
        self.name = name
        var b: [UInt8] = []
        b.reserveCapacity(capacity + 16 * argumentCount + 17)
        b.append(UInt8(ascii: "*"))
        RedisCommand.appendDecimal(argumentCount, to: &b)
        b.append(13); b.append(10)
        b.append(0)
        self.storage = b
        self.remaining = argumentCount
        append(name)
    }

    /// A command from whole arguments (tests, rare commands).
    public init(_ arguments: [String]) {
        self.init(arguments[0], argumentCount: arguments.count, capacity: arguments.reduce(0) { $0 + $1.utf8.count })
        for a in arguments.dropFirst() { append(a) }
    }

    /// Calls `body` with the NUL-terminated RESP text and its length without the NUL.
    func withFormatted<R>(_ body: (UnsafePointer<CChar>, Int) -> R) -> R {
        storage.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { c in body(c.baseAddress!, c.count - 1) }
        }
    }

    /// True once every announced argument was appended.
    public var isComplete: Bool { remaining == 0 }

    /// Appends one argument (bytes copied verbatim).
    public mutating func append(_ argument: some Collection<UInt8>) {
        precondition(remaining > 0, "more arguments than announced for \(name)")
        remaining -= 1
        storage.removeLast()
        storage.append(UInt8(ascii: "$"))
        RedisCommand.appendDecimal(argument.count, to: &storage)
        storage.append(13); storage.append(10)
        storage.append(contentsOf: argument)
        storage.append(13); storage.append(10)
        storage.append(0)
    }

    /// Appends one argument given as text.
    public mutating func append(_ argument: String) { append(argument.utf8) }

    /// Appends one argument as a decimal integer.
    public mutating func append(_ argument: Int) {
        var digits: [UInt8] = []
        RedisCommand.appendDecimal(argument, to: &digits)
        append(digits)
    }

    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            appendDecimal(-value, to: &out)
            return
        }
        if value < 10 {
            out.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        appendDecimal(value / 10, to: &out)
        out.append(UInt8(ascii: "0") + UInt8(value % 10))
    }
}
