import Foundation
import Glibc
import Protocol
import Runtime
import Testing

@testable import Gateway

/// Every server API method and every `ctl` command on one node (in-process bus): answers, bad input with
/// field-level reasons, keys, request ids, and the method lists of docs/api.md and `ctl --help`.
@Suite(.serialized) struct APIInputTests {
    /// (method, body, field named in the 400).
    static let badInputs: [(String, String, String?)] = [
        ("publish", "[1]", nil),
        ("publish", "{not json", nil),
        ("broadcast", "{\"rooms\":[\"r\"],\"data\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}", nil),
        ("publish", #"{"data":1}"#, "room"),
        ("publish", #"{"room":"a b","data":1}"#, "room"),
        ("publish", #"{"room":"lobby"}"#, "data"),
        ("publish", #"{"room":"lobby","data":1,"idempotency_key":""}"#, "idempotency_key"),
        ("publish", #"{"room":"lobby","data":1,"extra":true}"#, "extra"),
        ("broadcast", #"{"data":1}"#, "rooms"),
        ("broadcast", #"{"rooms":[],"data":1}"#, "rooms"),
        ("broadcast", #"{"rooms":"lobby","data":1}"#, "rooms"),
        ("broadcast", #"{"rooms":["ok","bad room"],"data":1}"#, "rooms"),
        ("broadcast", #"{"rooms":["a"]}"#, "data"),
        ("disconnect", "{}", "user"),
        ("disconnect", #"{"user":5}"#, "user"),
        ("disconnect", #"{"user":"u","code":1006}"#, "code"),
        ("disconnect", #"{"user":"u","code":2000}"#, "code"),
        ("disconnect", #"{"user":"u","code":"4000"}"#, "code"),
        ("disconnect", #"{"user":"u","reconnect":"no"}"#, "reconnect"),
        ("disconnect", #"{"user":"u","reason":"\#(String(repeating: "x", count: 121))"}"#, "reason"),
        ("subscribe", #"{"user":"u"}"#, "room"),
        ("subscribe", #"{"room":"r"}"#, "user"),
        ("unsubscribe", #"{"user":"u","room":""}"#, "room"),
        ("presence", "{}", "room"),
        ("presence", #"{"room":"r","limit":0}"#, "limit"),
        ("presence", #"{"room":"r","limit":1001}"#, "limit"),
        ("presence", #"{"room":"r","limit":true}"#, "limit"),
        ("history", #"{"room":"r","order":"up"}"#, "order"),
        ("history", #"{"room":"r","from":"nope"}"#, "from"),
        ("history", #"{"room":"r","limit":2.5}"#, "limit"),
        ("rooms", #"{"limit":-1}"#, "limit"),
        ("rooms", #"{"pattern":7}"#, "pattern"),
        ("info", #"{"verbose":true}"#, "verbose")
    ]

    @Test func badInputIsRefusedWithTheFieldAndARequestID() throws {
        let gw = try GatewayProcess(["--api-key", APITest.key], threads: 1)
        for (method, body, field) in Self.badInputs {
            let (status, json) = try APITest.call(gw.adminPort, method, body)
            #expect(status == 400, "\(method) \(body): \(status) \(json)")
            #expect(json["code"] as? String == "bad_request", "\(method) \(body)")
            #expect((json["message"] as? String)?.isEmpty == false)
            #expect(json["field"] as? String == field, "\(method) \(body): \(json)")
            #expect((json["request_id"] as? String)?.count == 16)
        }
        // The caller's X-Request-ID is echoed; unknown methods 404; GET 405; wrong or missing key 401.
        let echoed = try APITest.call(gw.adminPort, "info", "{}", headers: ["X-Request-ID": "trace-42"])
        #expect(echoed.status == 200 && echoed.json["request_id"] as? String == "trace-42")
        #expect(try APITest.call(gw.adminPort, "nope", "{}").status == 404)
        #expect(try httpGet(port: gw.adminPort, path: "/api/info").0 == 405)
        let wrong = try APITest.call(gw.adminPort, "info", "{}", key: "wrong-key")
        #expect(wrong.status == 401 && wrong.json["code"] as? String == "unauthorized" && (wrong.json["request_id"] as? String)?.count == 16)
        #expect(try APITest.call(gw.adminPort, "info", "{}", key: nil).status == 401)
        #expect(try APITest.call(gw.adminPort, "info", "{}", key: APITest.otherKey).status == 401)
        // The Idempotency-Key header and the body field must agree; one key stores once.
        let conflicting = try APITest.call(gw.adminPort, "publish", #"{"room":"r","data":1,"idempotency_key":"k1"}"#, headers: ["Idempotency-Key": "k2"])
        #expect(conflicting.status == 400 && conflicting.json["field"] as? String == "idempotency_key")
        let first = try APITest.call(gw.adminPort, "publish", #"{"room":"r","data":1,"idempotency_key":"k1"}"#)
        let again = try APITest.call(gw.adminPort, "publish", #"{"room":"r","data":1}"#, headers: ["Idempotency-Key": "k1"])
        #expect(first.status == 202 && first.json["offset"] as? String == again.json["offset"] as? String)
    }

    @Test func everyMethodAnswersOnASingleNode() throws {
        let gw = try GatewayProcess(["--api-key", APITest.key, "--api-key", APITest.otherKey], threads: 2)
        let c = try WSClient(port: gw.port)
        _ = try c.join("news")
        // Dev mode: connections have no user, so per-user commands affect nobody (not an error).
        for (method, body) in [
            ("disconnect", #"{"user":"ghost"}"#), ("subscribe", #"{"user":"ghost","room":"x"}"#),
            ("unsubscribe", #"{"user":"ghost","room":"x"}"#)
        ] {
            let r = try APITest.call(gw.adminPort, method, body, key: APITest.otherKey)
            #expect(r.status == 200 && r.json["affected"] as? Int == 0, "\(method)")
        }
        let b = try APITest.call(gw.adminPort, "broadcast", #"{"rooms":["news","other","news"],"data":{"b":true}}"#)
        #expect(b.status == 200)
        #expect((b.json["results"] as? [[String: Any]])?.map { $0["room"] as? String } == ["news", "other"])
        #expect(b.json["affected"] as? Int == 1)
        #expect(try APITest.next(c, op: "message")?["room"] as? String == "news")
        let p = try APITest.call(gw.adminPort, "presence", #"{"room":"news"}"#).json
        #expect(p["connections"] as? Int == 1 && p["users"] as? Int == 0)
        let unknownRoom = try APITest.call(gw.adminPort, "presence", #"{"room":"nowhere"}"#).json
        #expect(unknownRoom["connections"] as? Int == 0)
        let h = try APITest.call(gw.adminPort, "history", #"{"room":"nowhere"}"#)
        #expect(h.status == 200 && (h.json["messages"] as? [Any])?.isEmpty == true)
        // Rooms are paged in byte order with a cursor.
        let d = try WSClient(port: gw.port)
        for r in ["r:a", "r:b", "r:c"] { _ = try d.join(r) }
        let page1 = try APITest.call(gw.adminPort, "rooms", #"{"pattern":"r:*","limit":2}"#).json
        #expect((page1["rooms"] as? [[String: Any]])?.map { $0["room"] as? String } == ["r:a", "r:b"])
        let page2 = try APITest.call(gw.adminPort, "rooms", "{\"pattern\":\"r:*\",\"limit\":2,\"cursor\":\"\(page1["next"] as? String ?? "")\"}").json
        #expect((page2["rooms"] as? [[String: Any]])?.map { $0["room"] as? String } == ["r:c"])
        #expect(page2["next"] is NSNull)
        let info = try APITest.call(gw.adminPort, "info", "").json
        #expect((info["nodes"] as? [[String: Any]])?.count == 1 && info["connections"] as? Int == 2)
    }

    @Test func ctlCommandsTablesJSONAndFailures() throws {
        let gw = try GatewayProcess(["--api-key", APITest.key], threads: 1)
        let env = ["SWITCHBOARD_API_URL": "http://127.0.0.1:\(gw.adminPort)", "SWITCHBOARD_API_KEY": APITest.key]
        func ctl(_ args: [String], env e: [String: String]? = nil) throws -> (status: Int32, out: String, err: String) {
            try APITest.run(["ctl"] + args, environment: e ?? env)
        }
        let member = try WSClient(port: gw.port)
        _ = try member.join("lobby")
        let pub = try ctl(["publish", "lobby", #"{"n":1}"#])
        #expect(pub.status == 0 && pub.out.hasPrefix("offset ") && pub.out.contains("affected 1"))
        let pubJSON = try ctl(["publish", "lobby", "2", "--json", "--idempotency-key", "k"])
        let offset = ((try? JSONSerialization.jsonObject(with: Data(pubJSON.out.utf8))) as? [String: Any])?["offset"] as? String
        #expect(offset != nil)
        #expect(try ctl(["broadcast", "3", "lobby", "x"]).out.contains("affected 1"))
        let hist = try ctl(["history", "lobby", "--limit", "2"])
        #expect(hist.status == 0 && hist.out.hasPrefix("OFFSET") && hist.out.contains("3") && hist.out.contains("more: --from"))
        #expect(try ctl(["history", "lobby", "--order", "asc", "--json"]).out.contains(#"{"n":1}"#))
        let rooms = try ctl(["rooms"])
        #expect(rooms.out.contains("ROOM") && rooms.out.contains("lobby  1"))
        #expect(try ctl(["presence", "lobby"]).out.hasPrefix("lobby  connections 1  users 0"))
        #expect(try ctl(["info"]).out.contains("ready"))
        #expect(try ctl(["disconnect", "ghost", "--code", "4000", "--reason", "bye", "--no-reconnect"]).out.hasPrefix("affected 0"))
        #expect(try ctl(["subscribe", "ghost", "lobby"]).out.hasPrefix("affected 0"))
        #expect(try ctl(["unsubscribe", "ghost", "lobby", "--json"]).out.contains("\"affected\":0"))
        // tail prints live messages with their offsets.
        let tail = Process()
        tail.executableURL = GatewayProcess.binary
        tail.arguments = ["ctl", "tail", "lobby", "--api-url", "http://127.0.0.1:\(gw.adminPort)", "--api-key", APITest.key]
        let pipe = Pipe()
        tail.standardOutput = pipe
        try tail.run()
        usleep(500_000)
        _ = try APITest.call(gw.adminPort, "publish", #"{"room":"lobby","data":{"live":true}}"#)
        usleep(700_000)
        kill(tail.processIdentifier, SIGTERM)
        let stopBy = Date().addingTimeInterval(3)
        while tail.isRunning && Date() < stopBy { usleep(20_000) }
        if tail.isRunning { kill(tail.processIdentifier, SIGKILL) }
        tail.waitUntilExit()
        #expect(tail.terminationReason == .uncaughtSignal, "tail stops on SIGTERM")
        let tailed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(tailed.split(separator: "\n").count == 1 && tailed.contains(#"{"live":true}"#) && tailed.contains(":"), "tail printed: \(tailed)")
        // Failures: one line on stderr, exit 1 (the call failed) or 2 (usage).
        for (args, status, says) in [
            (["history", "bad room"], Int32(1), "field 'room'"), (["publish", "lobby", "{bad"], 2, "not JSON"),
            (["presence"], 2, "takes ROOM"), (["nope"], 2, "unknown command"), (["rooms", "--limit", "x"], 2, "integer"),
            (["info", "--bogus"], 2, "unknown flag"), (["disconnect", "u", "--code", "999"], 1, "field 'code'")
        ] {
            let r = try ctl(args)
            #expect(r.status == status, "\(args): \(r)")
            #expect(r.err.hasPrefix("switchboard ctl: ") && r.err.contains(says) && r.err.split(separator: "\n").count == 1, "\(args): \(r.err)")
        }
        #expect(try ctl(["info"], env: ["SWITCHBOARD_API_URL": env["SWITCHBOARD_API_URL"]!]).status == 2, "no key")
        #expect(try ctl(["info", "--api-key", "wrong"]).err.contains("HTTP 401"))
        #expect(try ctl(["info", "--api-url", "http://127.0.0.1:1"]).status == 1)
    }

    @Test func apiFlagsParseAndRefuseBadValues() throws {
        let c = try Config.parse(
            arguments: [
                "--api-key", "k1", "--api-key", "k2,k3", "--metrics-room-class", "stream=stream:*",
                "--metrics-room-class", "org=org:**", "--proxy-url", "http://127.0.0.1:9/app", "--proxy-publish", "mod:*"
            ],
            environment: ["SWITCHBOARD_API_KEY": "from-env"])
        #expect(c.api.keys == ["k1", "k2", "k3"], "the command line replaces the environment's keys")
        #expect(c.api.roomClasses.map(\.name) == ["stream", "org"] && c.api.roomClasses.map(\.pattern) == ["stream:*", "org:**"])
        #expect(try Config.parse(arguments: [], environment: ["SWITCHBOARD_API_KEY": "a,b"]).api.keys == ["a", "b"])
        #expect(try Config.parse(arguments: ["--api-key", "secret-value"], environment: [:]).loggable.first { $0.0 == "api-key" }?.1 == "***")
        for (args, says) in [
            (["--metrics-room-class", "stream"], "NAME=PATTERN"), (["--metrics-room-class", "=x"], "NAME=PATTERN"),
            (["--metrics-room-class", "Bad Name=x"], "must be 1-64"),
            (["--metrics-room-class", "a=x", "--metrics-room-class", "a=y"], "given twice"),
            (["--proxy-publish", "mod:*"], "needs --proxy-url"), (["--proxy-connect-events", "yes"], "needs --proxy-url"),
            (["--proxy-url", "https://x"], "--proxy-url: expected http://"), (["--proxy-retries", "11"], "proxy-retries")
        ] {
            do {
                _ = try Config.parse(arguments: args, environment: [:])
                Issue.record("\(args) was accepted")
            } catch {
                #expect(error.description.contains(says), "\(args): \(error.description)")
            }
        }
    }

    @Test func docsAndCtlHelpListTheMethodsTheCodeServes() throws {
        let doc = try String(contentsOf: APITest.packageRoot.appendingPathComponent("docs/api.md"), encoding: .utf8)
        #expect(APITest.documentedMethods(doc) == ServerAPI.methods)
        let help = try APITest.run(["ctl", "--help"])
        #expect(help.status == 0)
        let listed = help.out.split(separator: "\n").filter { $0.hasPrefix("  ") }.map { String($0.dropFirst(2).prefix { $0 != " " }) }
        #expect(listed == ServerAPI.methods + ["tail"])
        for m in ServerAPI.methods {
            #expect(doc.contains("$API/\(m)"), "docs/api.md has a curl example for \(m)")
        }
        #expect(doc.contains("switchboard ctl tail"))

        // No command at all: a usage error, the usage on stderr (a script piping stdout gets nothing).
        let bare = try APITest.run(["ctl"])
        #expect(bare.status == 2 && bare.out.isEmpty && bare.err.contains("usage: switchboard ctl"), "\(bare)")
    }
}
