import Foundation
import Protocol
import Testing

@testable import Gateway

/// Engine.IO polling requests a hostile client sends: a sid whose loop prefix is not lowercase hex (a
/// signed "-1" once indexed the loop array with -1 and trapped), and a POST with a negative or signed
/// Content-Length (once `prefix(-5)`: a trap). Each is a 400 and the node stays up.
@Suite struct EngineIOHostileInputTests {
    @Test func loopIndexAcceptsOnlyTheSIDShape() {
        let tail = String(repeating: "A", count: 20)
        #expect(SocketIOPollingSession.loopIndex(of: "00" + tail) == 0)
        #expect(SocketIOPollingSession.loopIndex(of: "1f" + tail) == 31)
        #expect(SocketIOPollingSession.loopIndex(of: "ff" + tail) == 255)
        for bad in ["-1", "+1", "1F", " 1", "g0", "é"] {
            #expect(SocketIOPollingSession.loopIndex(of: bad + String(repeating: "A", count: 22 - bad.utf8.count)) == nil, "\(bad)")
        }
        #expect(SocketIOPollingSession.loopIndex(of: "00" + tail + "A") == nil)
        let made = SocketIOPollingSession.makeSID(loop: 1)
        #expect(SocketIOPollingSession.loopIndex(of: made) == 1)
    }

    @Test func contentLengthIsDigitsOnly() {
        #expect(HTTPHeaders.contentLength("0") == 0)
        #expect(HTTPHeaders.contentLength("1234") == 1234)
        for bad in ["", "-5", "+5", " 5", "5 ", "0x10", "5,5", "9999999999999999999"] {
            #expect(HTTPHeaders.contentLength(bad) == nil, "\(bad)")
        }
    }

    @Test func hostileSIDsAndLengthsThroughTheBinary() throws {
        let gw = try GatewayProcess(["--socketio-path", "/socket.io/"], threads: 2)
        let tail = String(repeating: "A", count: 20)
        for prefix in ["-1", "+1", "-0"] {
            let q = "/socket.io/?EIO=4&transport=polling&sid=\(prefix)\(tail)"
            let (g, gBody) = try httpGet(port: gw.port, path: q)
            #expect(g == 400 && gBody.contains("\"code\":1"), "GET \(prefix): \(g) \(gBody)")
            #expect(try httpRequest(port: gw.port, method: "POST", path: q, body: Array("2".utf8)).0 == 400)
            #expect(try upgradeAnswer(port: gw.port, target: "/socket.io/?EIO=4&transport=websocket&sid=\(prefix)\(tail)").status == 400)
        }
        let (ok, open) = try httpGet(port: gw.port, path: "/socket.io/?EIO=4&transport=polling")
        #expect(ok == 200)
        let sid = try #require(open.split(separator: "\"").dropFirst(3).first.map(String.init))
        for length in ["-5", "+5"] {
            let s = try RawSocket(port: gw.port)
            try s.send(Array("POST /socket.io/?EIO=4&transport=polling&sid=\(sid) HTTP/1.1\r\nHost: x\r\nContent-Length: \(length)\r\n\r\n40abc".utf8))
            let answer = String(decoding: try s.readToEOF(timeout: 5), as: UTF8.self)
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(length): \(answer.prefix(80))")
        }
        #expect(try httpGet(port: gw.adminPort, path: "/health").0 == 200)
    }
}

extension EngineIOHostileInputTests {
    /// Two WebSockets probe one polling session: the older is closed (once it stayed open, unreferenced,
    /// for good), the newer upgrades; a probe after the upgrade on a third is closed too.
    @Test func supersededProbeIsClosed() throws {
        let gw = try GatewayProcess(["--socketio-path", "/socket.io/"], threads: 1)
        let (_, open) = try httpGet(port: gw.port, path: "/socket.io/?EIO=4&transport=polling")
        let sid = try #require(open.split(separator: "\"").dropFirst(3).first.map(String.init))
        let target = "/socket.io/?EIO=4&transport=websocket&sid=\(sid)"
        let first = try WSClient(port: gw.port, path: target, expectHello: false)
        try first.sendText("2probe")
        let second = try WSClient(port: gw.port, path: target, expectHello: false)
        try second.sendText("2probe")
        #expect(try first.expectClose(timeout: 3) == 1008)
        try second.sendText("5")
        let third = try WSClient(port: gw.port, path: target, expectHello: false)
        try third.sendText("2probe")
        #expect(try third.expectClose(timeout: 3) == 1008)
    }
}
