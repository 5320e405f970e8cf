import Foundation
import Glibc
import Protocol

/// `switchboard ctl`: the server API from a shell (docs/api.md). Reads `--api-url` (default
/// `http://127.0.0.1:9090`, env `SWITCHBOARD_API_URL`) and `--api-key` (env `SWITCHBOARD_API_KEY`), prints
/// tables for people and the API's JSON with `--json`, exits 0 on success, 1 with a one-line reason when the
/// call failed, 2 on a usage error.
public enum Ctl {
    /// The commands, in `--help` order: every API method (`ServerAPI.methods`), then `tail`.
    static var commands: [String] { ServerAPI.methods + ["tail"] }

    static let usage: [String: String] = [
        "publish": "publish ROOM JSON [--idempotency-key KEY]",
        "broadcast": "broadcast JSON ROOM... [--idempotency-key KEY]",
        "disconnect": "disconnect USER [--code N] [--reason TEXT] [--no-reconnect]",
        "subscribe": "subscribe USER ROOM",
        "unsubscribe": "unsubscribe USER ROOM",
        "presence": "presence ROOM [--limit N] [--cursor USER]",
        "history": "history ROOM [--limit N] [--order asc|desc] [--from OFFSET]",
        "rooms": "rooms [--pattern PATTERN] [--limit N] [--cursor ROOM]",
        "info": "info",
        "tail": "tail ROOM   (follows the room: polls history every 250 ms and prints each new message with its offset)"
    ]

    /// `switchboard ctl --help`.
    public static var helpText: String {
        var s = "usage: switchboard ctl COMMAND [ARGS] [--api-url URL] [--api-key KEY] [--json]\n\ncommands:\n"
        for c in commands { s += "  \(usage[c] ?? c)\n" }
        s += "\n--api-url: the node's admin port, http://host:port (env SWITCHBOARD_API_URL, default http://127.0.0.1:9090)\n"
        s += "--api-key: one of the node's --api-key values (env SWITCHBOARD_API_KEY)\n"
        s += "--json: print the API's JSON answer (tail: one JSON object per message)\n"
        s += "exit status: 0 ok, 1 the call failed (one line on stderr), 2 usage error\n"
        return s
    }

    struct Failure: Error {
        var status: Int32
        var message: String
    }

    /// Runs `ctl` with the arguments after `ctl`; returns the exit status. Output goes to stdout, the
    /// one-line reason of a failure to stderr.
    public static func run(arguments: [String], environment: [String: String]) -> Int32 {
        // A parent may have started us with SIGTERM/SIGINT blocked (the mask is inherited): `tail` must stop on them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        // Asked for, the usage is the answer (stdout, 0); without a command it is a usage error (stderr, 2).
        if arguments.contains("--help") || arguments.contains("-h") {
            print(helpText, terminator: "")
            return 0
        }
        if arguments.isEmpty {
            FileHandle.standardError.write(Data(helpText.utf8))
            return 2
        }
        do throws(Failure) {
            try execute(arguments, environment: environment)
            return 0
        } catch {
            FileHandle.standardError.write(Data("switchboard ctl: \(error.message)\n".utf8))
            return error.status
        }
    }

    static func usageError(_ message: String) -> Failure { Failure(status: 2, message: message + " (see switchboard ctl --help)") }

    private static func execute(_ arguments: [String], environment: [String: String]) throws(Failure) {
        // Split flags (with their values) from positional arguments.
        let valued: Set<String> = ["--api-url", "--api-key", "--idempotency-key", "--code", "--reason", "--limit", "--cursor", "--order", "--from", "--pattern"]
        let bare: Set<String> = ["--json", "--no-reconnect"]
        var flags: [String: String] = [:]
        var positional: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a.hasPrefix("--") {
                var name = a
                var value: String?
                if let eq = a.firstIndex(of: "=") {
                    name = String(a[..<eq])
                    value = String(a[a.index(after: eq)...])
                }
                if bare.contains(name) {
                    flags[name] = ""
                } else if valued.contains(name) {
                    if value == nil {
                        i += 1
                        guard i < arguments.count else { throw usageError("\(name) needs a value") }
                        value = arguments[i]
                    }
                    flags[name] = value!
                } else {
                    throw usageError("unknown flag \(name)")
                }
            } else {
                positional.append(a)
            }
            i += 1
        }
        guard let command = positional.first else { throw usageError("no command") }
        let args = Array(positional.dropFirst())
        guard commands.contains(command) else { throw usageError("unknown command '\(command)' (commands: \(commands.joined(separator: ", ")))") }
        let url = flags["--api-url"] ?? environment["SWITCHBOARD_API_URL"] ?? "http://127.0.0.1:9090"
        // The server's SWITCHBOARD_API_KEY may list several keys (comma-separated): any one of them works.
        let envKey = environment["SWITCHBOARD_API_KEY"]?.split(separator: ",").first.map(String.init)
        guard let key = flags["--api-key"] ?? envKey, !key.isEmpty else {
            throw usageError("no API key: pass --api-key or set SWITCHBOARD_API_KEY")
        }
        let api = try APIClient(url: url, key: key)
        let json = flags["--json"] != nil

        func expect(_ n: Int, _ names: String) throws(Failure) {
            guard args.count == n else { throw usageError("\(command) takes \(names)") }
        }
        func int(_ flag: String) throws(Failure) -> Int? {
            guard let v = flags[flag] else { return nil }
            guard let n = Int(v) else { throw usageError("\(flag) must be an integer, got '\(v)'") }
            return n
        }
        var body: [String: Any] = [:]
        switch command {
        case "publish":
            try expect(2, "ROOM JSON")
            body["room"] = args[0]
            body["data"] = try parseJSON(args[1])
            if let k = flags["--idempotency-key"] { body["idempotency_key"] = k }
        case "broadcast":
            guard args.count >= 2 else { throw usageError("broadcast takes JSON ROOM...") }
            body["data"] = try parseJSON(args[0])
            body["rooms"] = Array(args.dropFirst())
            if let k = flags["--idempotency-key"] { body["idempotency_key"] = k }
        case "disconnect":
            try expect(1, "USER")
            body["user"] = args[0]
            if let c = try int("--code") { body["code"] = c }
            if let r = flags["--reason"] { body["reason"] = r }
            if flags["--no-reconnect"] != nil { body["reconnect"] = false }
        case "subscribe", "unsubscribe":
            try expect(2, "USER ROOM")
            body["user"] = args[0]
            body["room"] = args[1]
        case "presence":
            try expect(1, "ROOM")
            body["room"] = args[0]
            if let l = try int("--limit") { body["limit"] = l }
            if let c = flags["--cursor"] { body["cursor"] = c }
        case "history":
            try expect(1, "ROOM")
            body["room"] = args[0]
            if let l = try int("--limit") { body["limit"] = l }
            if let o = flags["--order"] { body["order"] = o }
            if let f = flags["--from"] { body["from"] = f }
        case "rooms":
            try expect(0, "no arguments")
            if let p = flags["--pattern"] { body["pattern"] = p }
            if let l = try int("--limit") { body["limit"] = l }
            if let c = flags["--cursor"] { body["cursor"] = c }
        case "info":
            try expect(0, "no arguments")
        case "tail":
            try expect(1, "ROOM")
            return try tail(api, room: args[0], json: json)
        default:
            break
        }
        let (text, object) = try api.call(command, body)
        if json {
            print(text)
        } else {
            print(render(command, object), terminator: "")
        }
    }

    static func parseJSON(_ text: String) throws(Failure) -> Any {
        guard let v = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) else {
            throw usageError("'\(text.prefix(60))' is not JSON (quote strings: '\"hi\"')")
        }
        return v
    }

    /// Follows `room` by polling `history` (ascending from the newest offset seen) every 250 ms.
    private static func tail(_ api: APIClient, room: String, json: Bool) throws(Failure) {
        let (_, first) = try api.call("history", ["room": room, "limit": 1, "order": "desc"])
        var from = ((first["messages"] as? [[String: Any]])?.first?["offset"] as? String)
        while true {
            var body: [String: Any] = ["room": room, "order": "asc", "limit": 100]
            if let from { body["from"] = from }
            let (_, page) = try api.call("history", body)
            let messages = page["messages"] as? [[String: Any]] ?? []
            for m in messages {
                let offset = m["offset"] as? String ?? ""
                let data = compact(m["data"])
                // Written at once (not through stdio's buffer), so a pipe sees each message as it comes.
                FileHandle.standardOutput.write(Data(((json ? "{\"offset\":\(js(offset)),\"data\":\(data)}" : "\(offset)  \(data)") + "\n").utf8))
                from = offset
            }
            if messages.count < 100 { usleep(250_000) }
        }
    }

    static func compact(_ v: Any?) -> String {
        guard let v, let d = try? JSONSerialization.data(withJSONObject: v, options: [.fragmentsAllowed, .withoutEscapingSlashes, .sortedKeys]) else {
            return "null"
        }
        return String(decoding: d, as: UTF8.self)
    }

    /// The human form of an answer.
    static func render(_ command: String, _ o: [String: Any]) -> String {
        func nodes() -> String {
            guard let n = o["nodes"] as? [String: Any] else { return "" }
            return "  (nodes answered \(n["answered"] ?? 0)/\(n["reached"] ?? 0))"
        }
        switch command {
        case "publish":
            return "offset \(o["offset"] ?? "")  affected \(o["affected"] ?? 0)\n"
        case "broadcast":
            let rows = (o["results"] as? [[String: Any]] ?? []).map { r in
                [r["room"] as? String ?? "", r["offset"] as? String ?? ((r["error"] as? [String: Any])?["message"] as? String).map { "error: \($0)" } ?? ""]
            }
            return table(["ROOM", "OFFSET"], rows) + "affected \(o["affected"] ?? 0)\n"
        case "disconnect", "subscribe", "unsubscribe":
            return "affected \(o["affected"] ?? 0)\(nodes())\n"
        case "presence":
            let rows = (o["items"] as? [[String: Any]] ?? []).map { ["\($0["user"] ?? "")", "\($0["connections"] ?? 0)"] }
            var s = "\(o["room"] ?? "")  connections \(o["connections"] ?? 0)  users \(o["users"] ?? 0)\n" + table(["USER", "CONNECTIONS"], rows)
            if let next = o["next"] as? String { s += "more: --cursor \(next)\n" }
            return s
        case "history":
            let rows = (o["messages"] as? [[String: Any]] ?? []).map { ["\($0["offset"] ?? "")", compact($0["data"])] }
            var s = table(["OFFSET", "DATA"], rows)
            if let next = o["next"] as? String { s += "more: --from \(next)\n" }
            return s
        case "rooms":
            let rows = (o["rooms"] as? [[String: Any]] ?? []).map { ["\($0["room"] ?? "")", "\($0["connections"] ?? 0)"] }
            var s = table(["ROOM", "CONNECTIONS"], rows)
            if let next = o["next"] as? String { s += "more: --cursor \(next)\n" }
            return s
        case "info":
            let rows = (o["nodes"] as? [[String: Any]] ?? []).map {
                ["\($0["id"] ?? "")", "\($0["address"] ?? "")", "\($0["state"] ?? "")", "\($0["connections"] ?? 0)", "\($0["uptime_s"] ?? 0)s"]
            }
            return "switchboard \(o["version"] ?? "")  bus \(o["bus"] ?? "") (\(o["bus_state"] ?? ""))  connections \(o["connections"] ?? 0)\n"
                + table(["NODE", "ADDRESS", "STATE", "CONNECTIONS", "UPTIME"], rows)
        default:
            return compact(o) + "\n"
        }
    }

    /// Left-aligned columns separated by two spaces.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { i in all.map { $0.indices.contains(i) ? $0[i].count : 0 }.max() ?? 0 }
        return all.map { row in
            row.indices.map { i in i == row.count - 1 ? row[i] : row[i].padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}

/// A blocking HTTP/1.1 client for `ctl` (one request per connection, 10 s timeouts): plain `http://` only.
struct APIClient {
    let host: String
    let port: Int
    let prefix: String
    let key: String

    init(url: String, key: String) throws(Ctl.Failure) {
        guard url.hasPrefix("http://") else { throw Ctl.usageError("--api-url must be http://host:port (got '\(url)')") }
        let rest = url.dropFirst(7)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        var path = String(rest[slash...])
        while path.hasSuffix("/") { path.removeLast() }
        prefix = path
        if let colon = authority.lastIndex(of: ":") {
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else {
                throw Ctl.usageError("bad port in --api-url '\(url)'")
            }
            host = String(authority[..<colon])
            port = p
        } else {
            host = String(authority)
            port = 80
        }
        guard !host.isEmpty else { throw Ctl.usageError("no host in --api-url '\(url)'") }
        self.key = key
    }

    /// POSTs `body` to `/api/<method>`; returns the answer's text and object, or throws with its message.
    func call(_ method: String, _ body: [String: Any]) throws(Ctl.Failure) -> (String, [String: Any]) {
        let payload = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])).map { [UInt8]($0) } ?? []
        var req = "POST \(prefix)/api/\(method) HTTP/1.1\r\nHost: \(host):\(port)\r\nAuthorization: Bearer \(key)\r\n"
        req += "Content-Type: application/json\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n"
        let raw = try exchange(Array(req.utf8) + payload)
        let text = String(decoding: raw, as: UTF8.self)
        guard let sp = text.firstIndex(of: " "), let status = Int(text[text.index(after: sp)...].prefix(3)) else {
            throw Ctl.Failure(status: 1, message: "not an HTTP answer from \(host):\(port)")
        }
        let bodyText = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        let object = (try? JSONSerialization.jsonObject(with: Data(bodyText.utf8))) as? [String: Any] ?? [:]
        guard (200...299).contains(status) else {
            var why = object["message"] as? String ?? bodyText.trimmingCharacters(in: .whitespacesAndNewlines)
            if let field = object["field"] as? String { why += " (field '\(field)')" }
            throw Ctl.Failure(status: 1, message: "\(method): HTTP \(status): \(why)")
        }
        return (bodyText.trimmingCharacters(in: .whitespacesAndNewlines), object)
    }

    private func exchange(_ request: [UInt8]) throws(Ctl.Failure) -> [UInt8] {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &res) == 0, let ai = res else {
            throw Ctl.Failure(status: 1, message: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(res) }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Ctl.Failure(status: 1, message: "socket: errno \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 else {
            throw Ctl.Failure(status: 1, message: "cannot connect to \(host):\(port): \(String(cString: strerror(errno)))")
        }
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Ctl.Failure(status: 1, message: "write to \(host):\(port) failed") }
            sent += n
        }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            guard n > 0 else { throw Ctl.Failure(status: 1, message: "no answer from \(host):\(port) within 10 s") }
            out.append(contentsOf: buf[0..<n])
            guard out.count <= 64 << 20 else { throw Ctl.Failure(status: 1, message: "answer over 64 MiB") }
        }
        return out
    }
}
