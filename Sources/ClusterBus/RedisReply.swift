import CHiredis
import Runtime

/// A Redis reply copied out of hiredis's `redisReply` tree.
///
/// hiredis frees a reply as soon as the callback returns (STYLE.md, hiredis point 6), so every callback
/// copies what it needs into this value first; no C pointer outlives its callback. Bulk strings stay bytes
/// (binary-safe); status and error lines become `String`.
public indirect enum RedisReply: Equatable, Sendable {
    /// A bulk string (RESP `$`).
    case string([UInt8])
    /// A status line such as `OK` (RESP `+`).
    case status(String)
    /// An error line such as `NOSCRIPT No matching script` (RESP `-`).
    case error(String)
    /// An integer (RESP `:`).
    case integer(Int64)
    /// An array (RESP `*`), nested replies in order.
    case array([RedisReply])
    /// The null bulk string or null array.
    case null

    /// Deep-copies `reply`. Unknown types (none in RESP2) become `.null`.
    init(copying reply: UnsafePointer<redisReply>) {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            self = .string(RedisReply.bytes(r.str, r.len))
        case REDIS_REPLY_STATUS:
            self = .status(String(decoding: RedisReply.bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            self = .error(String(decoding: RedisReply.bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            self = .integer(r.integer)
        case REDIS_REPLY_ARRAY:
            var items: [RedisReply] = []
            items.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                if let e = r.element[i] { items.append(RedisReply(copying: e)) } else { items.append(.null) }
            }
            self = .array(items)
        default:
            self = .null
        }
    }

    static func bytes(_ p: UnsafeMutablePointer<CChar>?, _ n: Int) -> [UInt8] {
        guard let p, n > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }

    /// The bulk string or status as text (nil for other kinds).
    public var text: String? {
        switch self {
        case .string(let b): return String(decoding: b, as: UTF8.self)
        case .status(let s): return s
        default: return nil
        }
    }

    /// The integer, or a bulk string holding a decimal integer (as `HVALS` returns them).
    public var int: Int? {
        switch self {
        case .integer(let i): return Int(i)
        case .string(let b): return Int(String(decoding: b, as: UTF8.self))
        default: return nil
        }
    }

    /// The elements of an array (nil for other kinds).
    public var array: [RedisReply]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The error line when this is an error reply.
    public var errorMessage: String? {
        if case .error(let e) = self { return e }
        return nil
    }
}
