import Foundation

/// The server API, backend proxy and room-class metrics part of ``Config`` (flags in ``Config/apiOptions``).
public struct APISettings: Sendable {
    /// `--api-key`, repeatable: every key listed is accepted (rotation without downtime). Empty: API off.
    public var keys: [String] = []
    /// `--proxy-url`: the application backend for `rpc`, proxied publishes and connection events (nil: off).
    public var proxyURL: String? = nil
    /// `--proxy-publish`, repeatable: room patterns (``RoomPattern``) whose client publishes the backend
    /// allows, refuses or rewrites first.
    public var proxyPublish: [String] = []
    /// `--proxy-connect-events`: batched `connect` / `disconnect` notifications to the backend.
    public var proxyConnectEvents = false
    /// Milliseconds, one proxy attempt, connect to last byte (`--proxy-try-timeout`, 2 s).
    public var proxyTryTimeoutMs = 2000
    /// Milliseconds, all attempts of one proxied call (`--proxy-deadline`, 5 s).
    public var proxyDeadlineMs = 5000
    /// Retries after the first attempt (`--proxy-retries`, 2).
    public var proxyRetries = 2
    /// Most proxied calls in flight on the node (`--proxy-max-inflight`, 1,000); beyond, clients get `unavailable`.
    public var proxyMaxInflight = 1000
    /// `--metrics-room-class NAME=PATTERN`, repeatable: per-class room and member gauges.
    public var roomClasses: [(name: String, pattern: String)] = []
}

extension Config {
    /// The API, proxy and metrics flags, appended to the flag table.
    static let apiOptions: [Option] = [
        Option(
            name: "api-key", kind: .list,
            help: "bearer key for the server API (POST /api/<method>) on the admin port; repeatable, any listed key is accepted (unset = API off)",
            apply: { c, v in c.api.keys += listItems(v) }, current: { $0.api.keys.isEmpty ? "" : "\($0.api.keys.count) keys" },
            secret: true, reset: { $0.api.keys = [] }),
        Option(
            name: "proxy-url", kind: .string,
            help: "application backend, http://host[:port][/path]: rpc ops, --proxy-publish and connection events are POSTed there (unset = off)",
            apply: { c, v in c.api.proxyURL = v.isEmpty ? nil : v }, current: { $0.api.proxyURL ?? "" }),
        Option(
            name: "proxy-publish", kind: .list, help: "room pattern whose client publishes the backend allows, refuses or rewrites first; repeatable",
            apply: { c, v in c.api.proxyPublish += listItems(v) }, current: { $0.api.proxyPublish.joined(separator: ",") }, reset: { $0.api.proxyPublish = [] }),
        Option(
            name: "proxy-connect-events", kind: .flag, help: "yes/no: tell the backend about connects and disconnects (batched, fire-and-forget)",
            apply: { c, v throws(Invalid) in c.api.proxyConnectEvents = try yesNo(v, "proxy-connect-events") },
            current: { $0.api.proxyConnectEvents ? "yes" : "no" }),
        Option(
            name: "proxy-try-timeout", kind: .duration, help: "one backend proxy attempt, connect to last byte",
            apply: { c, v throws(Invalid) in c.api.proxyTryTimeoutMs = try duration(v, "proxy-try-timeout", in: 1...600_000) },
            current: { "\($0.api.proxyTryTimeoutMs)ms" }),
        Option(
            name: "proxy-deadline", kind: .duration, help: "all attempts of one proxied call (then the client gets error timeout)",
            apply: { c, v throws(Invalid) in c.api.proxyDeadlineMs = try duration(v, "proxy-deadline", in: 1...600_000) },
            current: { "\($0.api.proxyDeadlineMs)ms" }),
        Option(
            name: "proxy-retries", kind: .int, help: "backend proxy retries after the first attempt (5xx, timeout, refused)",
            apply: { c, v throws(Invalid) in c.api.proxyRetries = try int(v, "proxy-retries", 0...10) }, current: { "\($0.api.proxyRetries)" }),
        Option(
            name: "proxy-max-inflight", kind: .int, help: "most proxied calls in flight on the node (beyond: error unavailable)",
            apply: { c, v throws(Invalid) in c.api.proxyMaxInflight = try int(v, "proxy-max-inflight", 1...1_000_000) },
            current: { "\($0.api.proxyMaxInflight)" }),
        Option(
            name: "metrics-room-class", kind: .list,
            help:
                "NAME=PATTERN: export switchboard_rooms{class} and switchboard_room_members{class} for rooms matching PATTERN (this node's members); repeatable, at most 32",
            apply: { c, v throws(Invalid) in
                for item in listItems(v) {
                    guard let eq = item.firstIndex(of: "="), eq != item.startIndex, item.index(after: eq) != item.endIndex else {
                        throw Invalid(description: "--metrics-room-class: expected NAME=PATTERN, got '\(item)'")
                    }
                    let name = String(item[..<eq])
                    guard name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2D }), name.utf8.count <= 64
                    else {
                        throw Invalid(description: "--metrics-room-class: class name '\(name)' must be 1-64 of a-z 0-9 _ -")
                    }
                    c.api.roomClasses.append((name, String(item[item.index(after: eq)...])))
                }
            }, current: { $0.api.roomClasses.map { "\($0.name)=\($0.pattern)" }.joined(separator: ",") }, reset: { $0.api.roomClasses = [] })
    ]

    /// Checks the API flags together (called at the end of `parse`).
    static func finalizeAPI(_ config: inout Config) throws(Invalid) {
        if let url = config.api.proxyURL {
            do throws(AuthEndpoint.Invalid) { _ = try AuthEndpoint(url: url, flag: "--proxy-url") } catch { throw Invalid(description: error.description) }
        }
        if !config.api.proxyPublish.isEmpty && config.api.proxyURL == nil {
            throw Invalid(description: "--proxy-publish needs --proxy-url")
        }
        if config.api.proxyConnectEvents && config.api.proxyURL == nil {
            throw Invalid(description: "--proxy-connect-events needs --proxy-url")
        }
        if Set(config.api.roomClasses.map(\.name)).count != config.api.roomClasses.count {
            throw Invalid(description: "--metrics-room-class: a class name is given twice")
        }
        if config.api.roomClasses.count > 32 { throw Invalid(description: "--metrics-room-class: at most 32 classes") }
    }
}
