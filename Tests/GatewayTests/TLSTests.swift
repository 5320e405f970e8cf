import Foundation
import Glibc
import Testing

@testable import Gateway

/// TLS termination (issue 15) against the real binary with real TLS clients: Python `ssl` and `websockets`
/// (Debian), `openssl s_client`, Node's `ws` (Debian's node-ws); the shared cases C30, C31, C33; bad input;
/// SNI; SIGHUP reload; startup checks. Certificates come from a throwaway CA made with `openssl`.
@Suite(.serialized) struct TLSTests {
    /// Python prelude shared by the scripts below: a WebSocket upgrade and masked client frames over any socket.
    static let prelude = """
        import json, os, socket, ssl, sys, threading, time
        KEY = "dGhlIHNhbXBsZSBub25jZQ=="
        def upgrade(s, path):
            s.sendall(("GET %s HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
                       "Sec-WebSocket-Key: %s\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n" % (path, KEY)).encode())
            head = b""
            while b"\\r\\n\\r\\n" not in head:
                d = s.recv(4096)
                if not d: raise SystemExit("closed during upgrade: %r" % head)
                head += d
            assert head.startswith(b"HTTP/1.1 101"), head
            return head.split(b"\\r\\n\\r\\n", 1)[1]
        def client_ctx(ca):
            ctx = ssl.create_default_context(cafile=ca)
            return ctx
        def bio_handshake(port, ca):
            # A TLS client driven by hand over MemoryBIOs: returns once the client side is done, with its
            # last flight (Finished) still in `outg`, so the server is mid-handshake until it is sent.
            raw = socket.create_connection(("127.0.0.1", port))
            inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
            obj = client_ctx(ca).wrap_bio(inc, outg, server_hostname="127.0.0.1")
            while True:
                try:
                    obj.do_handshake(); break
                except ssl.SSLWantReadError:
                    raw.sendall(outg.read())
                    inc.write(raw.recv(65536))
            return raw, obj, inc, outg
        """

    func python(_ script: String, _ args: [String], timeout: TimeInterval = 60) throws -> (Int32, String) {
        try runTool([debianPython, "-c", Self.prelude + "\n" + script] + args, timeout: timeout)
    }

    func sClient(port: Int, ca: String, extra: [String] = [], input: String = "") throws -> String {
        try runTool(["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", ca] + extra, input: input, timeout: 20).1
    }

    func waitUntil(_ timeout: TimeInterval, _ what: String, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            usleep(50_000)
        }
        throw TestFailure("timed out waiting for \(what)")
    }

    // MARK: - Real clients

    @Test func pythonWebsocketsOpenSSLAndNodeWSSpeakWSS() throws {
        let ca = try TestCA()
        let gw = try GatewayProcess(["--echo-path", "/echo"] + ca.flags("server"))
        // The line follows /health answering (loop 0 serves it first): wait for it rather than read once.
        try waitUntil(TestTiming.seconds(5), "the startup log naming the wss:// URL") { gw.log().contains("\"ws\":\"wss://127.0.0.1:\(gw.port)/ws\"") }
        // Python websockets (asyncio) over wss, verifying the chain against the test CA.
        let (status, out) = try python(
            """
            import asyncio, websockets
            async def main():
                ctx = client_ctx(sys.argv[2])
                async with websockets.connect("wss://127.0.0.1:%s/ws" % sys.argv[1], ssl=ctx) as ws:
                    hello = json.loads(await ws.recv())
                    assert hello["op"] == "hello", hello
                async with websockets.connect("wss://127.0.0.1:%s/echo" % sys.argv[1], ssl=ctx, max_size=None) as ws:
                    for m in ["hi", "x" * 200000, bytes(range(256)) * 300]:
                        await ws.send(m)
                        assert await ws.recv() == m
                    print("ok", ws.transport.get_extra_info("ssl_object").version())
            asyncio.run(main())
            """, ["\(gw.port)", ca.caPath])
        #expect(status == 0 && out.contains("ok TLSv1.3"), "\(out)")
        // openssl s_client: chain verifies, ALPN http/1.1, TLS 1.3 by default and 1.2 when asked.
        let s13 = try sClient(port: gw.port, ca: ca.caPath, extra: ["-alpn", "http/1.1"])
        #expect(s13.contains("Verify return code: 0 (ok)") && s13.contains("ALPN protocol: http/1.1") && s13.contains("TLSv1.3"), "\(s13)")
        let s12 = try sClient(port: gw.port, ca: ca.caPath, extra: ["-tls1_2"])
        #expect(s12.contains("Protocol  : TLSv1.2") && s12.contains("ECDHE-ECDSA-AES128-GCM-SHA256"), "\(s12)")
        // Node's ws (Debian node-ws) over wss.
        let node = """
            const WebSocket = require('ws'); const fs = require('fs');
            const ws = new WebSocket(process.argv[1], { ca: fs.readFileSync(process.argv[2]) });
            ws.on('message', m => { console.log(String(m)); process.exit(0); });
            ws.on('error', e => { console.error('error ' + e.message); process.exit(1); });
            setTimeout(() => { console.error('timeout'); process.exit(2); }, 5000);
            """
        let (nodeStatus, nodeOut) = try runTool(
            ["node", "-e", node, "wss://127.0.0.1:\(gw.port)/ws", ca.caPath],
            environment: ["NODE_PATH": "/usr/share/nodejs"])
        #expect(nodeStatus == 0 && nodeOut.contains("\"op\":\"hello\""), "\(nodeOut)")
        #expect(try gw.metric("switchboard_tls_handshakes_total{listener=\"public\",result=\"ok\",version=\"1.3\"}") ?? 0 >= 4)
        #expect(try gw.metric("switchboard_tls_handshakes_total{listener=\"public\",result=\"ok\",version=\"1.2\"}") == 1)
        #expect(try gw.metric("switchboard_tls_handshake_seconds_count") ?? 0 >= 5)
        #expect(
            try gw.metric("switchboard_tls_certificate_expiry_timestamp_seconds{listener=\"public\",certificate=\"\(ca.path("server.pem"))\"}") ?? 0
                > Date().timeIntervalSince1970 + 20 * 86400)
    }

    // MARK: - C30: plain HTTP on the TLS port

    @Test func plainHTTPOnTheTLSPortGetsAPlainTextAnswerAndIsReleased() throws {
        let ca = try TestCA()
        let gw = try GatewayProcess(ca.flags("server") + ["--handshake-timeout", "2s"])
        usleep(200_000)
        let baseline = openFDCount(gw.pid)
        let upgrade =
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:\(gw.port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        func answer(_ request: String, timeout: TimeInterval = 1) throws -> (String, TimeInterval) {
            let s = try RawSocket(port: gw.port)
            let t0 = Date()
            try s.send(Array(request.utf8))
            let bytes = try s.readToEOF(timeout: timeout)
            return (String(decoding: bytes, as: UTF8.self), Date().timeIntervalSince(t0))
        }
        // (a) the upgrade request, (b) a plain GET, (c) one byte: each answered at once, never a 101.
        for request in [upgrade, "GET /health HTTP/1.1\r\n\r\n", "G"] {
            let (text, elapsed) = try answer(request)
            #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(text)")
            #expect(text.contains("plain HTTP sent to the TLS port, use wss:// or https://"))
            #expect(text.contains("Connection: close"))
            #expect(!text.contains("101"))
            #expect(elapsed < 1, "answered and closed in \(elapsed)s")
        }
        for _ in 0..<200 { _ = try answer(upgrade) }
        try waitUntil(3, "fds back to baseline \(baseline), now \(openFDCount(gw.pid))") { openFDCount(gw.pid) <= baseline }
        #expect(try gw.metric("switchboard_tls_plaintext_rejections_total{listener=\"public\"}") == 203)
        #expect(try gw.metric("switchboard_connections_open") == 0)
    }

    // MARK: - C31: handshakes that never finish

    @Test func stalledHandshakesAreClosedAtTheDeadlineCountedFromAccept() throws {
        let ca = try TestCA()
        let gw = try GatewayProcess(ca.flags("server") + ["--handshake-timeout", "2s"])
        usleep(200_000)
        let baseline = openFDCount(gw.pid)
        let (status, out) = try python(
            """
            port, ca = int(sys.argv[1]), sys.argv[2]
            res = {}
            def hello_bytes():
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
                i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
                obj = ctx.wrap_bio(i, o, server_side=False)
                try: obj.do_handshake()
                except ssl.SSLWantReadError: pass
                return o.read()
            def until_closed(s, t0):
                s.settimeout(10)
                try:
                    while s.recv(65536): pass
                except OSError: pass
                return round(time.time() - t0, 3)
            def a():
                t0 = time.time(); s = socket.create_connection(("127.0.0.1", port)); res["a"] = until_closed(s, t0)
            def b():
                h = hello_bytes(); t0 = time.time(); s = socket.create_connection(("127.0.0.1", port))
                s.sendall(h[:100]); res["b"] = until_closed(s, t0)
            def c():
                h = hello_bytes(); t0 = time.time(); s = socket.create_connection(("127.0.0.1", port))
                def drip():
                    for byte in h:
                        try: s.send(bytes([byte]))
                        except OSError: return
                        time.sleep(0.25)
                threading.Thread(target=drip, daemon=True).start()
                res["c"] = until_closed(s, t0)
            def d():
                t0 = time.time(); raw = socket.create_connection(("127.0.0.1", port))
                s = client_ctx(ca).wrap_socket(raw, server_hostname="127.0.0.1")
                res["d_version"] = s.version()
                res["d"] = until_closed(s, t0)
            ts = [threading.Thread(target=f) for f in (a, b, c, d)]
            for t in ts: t.start()
            for t in ts: t.join()
            # (e) 500 silent connections open while a normal wss client connects.
            import asyncio, websockets
            idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(500)]
            async def normal():
                t0 = time.time()
                async with websockets.connect("wss://127.0.0.1:%d/ws" % port, ssl=client_ctx(ca)) as ws:
                    assert json.loads(await ws.recv())["op"] == "hello"
                return round(time.time() - t0, 3)
            res["e"] = asyncio.run(normal())
            for s in idle: s.close()
            print(json.dumps(res))
            """, ["\(gw.port)", ca.caPath])
        #expect(status == 0, "\(out)")
        let json = try #require(out.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }, "\(out)")
        for k in ["a", "b", "c", "d"] {
            let t = json[k] as? Double ?? -1
            #expect(t >= 1.8 && t <= 3.0, "(\(k)) closed \(t)s after connect; expected the 2 s handshake deadline from accept")
        }
        #expect(json["d_version"] as? String == "TLSv1.3")
        #expect((json["e"] as? Double ?? 9) < 1, "a normal client next to 500 stalled handshakes: \(json["e"] ?? "-")s")
        try waitUntil(4, "fds back to baseline \(baseline), now \(openFDCount(gw.pid))") { openFDCount(gw.pid) <= baseline }
        #expect(try gw.metric("switchboard_reaped_connections_total{reason=\"handshake_timeout\"}") ?? 0 >= 4)
        #expect(try gw.metric("switchboard_tls_handshakes_total{listener=\"public\",result=\"incomplete\",version=\"none\"}") ?? 0 >= 3)
        #expect(try gw.metric("switchboard_connections_open") == 0)
    }

    // MARK: - C33: close_notify before FIN, and the close timeout

    @Test func closesSendCloseNotifyBeforeFINAndTheCloseTimeoutClosesTCP() throws {
        let ca = try TestCA()
        let gw = try GatewayProcess(ca.flags("server") + ["--echo-path", "/echo", "--ping-interval", "1s", "--pong-timeout", "1s", "--close-timeout", "2s"])
        usleep(200_000)
        let baseline = openFDCount(gw.pid)
        // (a) client Close 1000: the echoed Close, then close_notify (recv gives b'', not SSLEOFError).
        let (status, out) = try python(
            """
            port, ca = int(sys.argv[1]), sys.argv[2]
            raw = socket.create_connection(("127.0.0.1", port))
            s = client_ctx(ca).wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False)
            rest = upgrade(s, "/echo")
            s.sendall(bytes([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]))
            got = rest
            while True:
                d = s.recv(4096)
                if d == b"": break
                got += d
            print("clean", got.hex())
            """, ["\(gw.port)", ca.caPath])
        #expect(status == 0 && out.contains("clean 880203e8"), "\(out)")
        // (b)+(c) a client that never answers: ping timeout closes with 1001, close_notify, FIN; the client keeps
        // its socket open and the server closes TCP by itself after the close timeout.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: debianPython)
        p.arguments = [
            "-c",
            Self.prelude + "\n" + """
                port, ca = int(sys.argv[1]), sys.argv[2]
                raw = socket.create_connection(("127.0.0.1", port))
                s = client_ctx(ca).wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False)
                got = upgrade(s, "/ws")
                while True:
                    d = s.recv(4096)
                    if d == b"": break
                    got += d
                print("eof", "88" in got.hex() and "03e9" in got.hex(), flush=True)
                time.sleep(6)
                """, "\(gw.port)", ca.caPath
        ]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let guardKill = DispatchWorkItem { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: guardKill)
        defer { guardKill.cancel() }
        // Open at first (the client holds it), then released by the server while the client still holds it.
        try waitUntil(3, "the connection to open") { try gw.metric("switchboard_connections_open") == 1 }
        try waitUntil(7, "fds back to baseline while the client holds its socket") { openFDCount(gw.pid) <= baseline }
        #expect(p.isRunning, "the client still holds its end")
        p.waitUntilExit()
        let clientOut = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(clientOut.contains("eof True"), "the client read Close 1001 then a clean close_notify: \(clientOut)")
        #expect(try gw.metric("switchboard_reaped_connections_total{reason=\"ping_timeout\"}") == 1)
    }

    /// C33 (d), scaled to the test machine: long-lived wss clients receive a room message every 10 ms while
    /// hundreds of short wss connections open and close, cleanly or with RST. No long-lived client may see a
    /// TLS error or an unexpected close (no TLS byte written to a descriptor after its connection closed).
    @Test func churnOfShortConnectionsNeverDisturbsLongLivedOnes() throws {
        let ca = try TestCA()
        let gw = try GatewayProcess(ca.flags("server") + ["--max-frame-rate", "0"], threads: 2)
        let (status, out) = try python(
            """
            import asyncio, random, struct, websockets
            port, ca = int(sys.argv[1]), sys.argv[2]
            url = "wss://127.0.0.1:%d/ws" % port
            async def main():
                ctx = client_ctx(ca)
                errors, received = [], [0] * 20
                stop = asyncio.Event()
                async def member(i):
                    try:
                        async with websockets.connect(url, ssl=ctx) as ws:
                            await ws.recv()
                            await ws.send('{"op":"join","room":"live"}')
                            while not stop.is_set():
                                try:
                                    m = await asyncio.wait_for(ws.recv(), 0.5)
                                except asyncio.TimeoutError:
                                    continue
                                if '"message"' in m: received[i] += 1
                    except Exception as e:
                        errors.append("member %d: %r" % (i, e))
                async def publisher():
                    async with websockets.connect(url, ssl=ctx) as ws:
                        await ws.recv()
                        n = 0
                        while not stop.is_set():
                            await ws.send('{"op":"publish","room":"live","data":%d}' % n)
                            n += 1
                            await asyncio.sleep(0.01)
                async def short(k):
                    try:
                        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1")
                        w.write(("GET /ws HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
                                 "Sec-WebSocket-Key: %s\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n" % KEY).encode())
                        await r.readuntil(b"\\r\\n\\r\\n")
                        if k % 2:
                            w.write(bytes([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]))
                            await w.drain()
                            await asyncio.wait_for(r.read(), 3)
                            w.close()
                        else:
                            w.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                            w.transport.abort()
                    except Exception as e:
                        pass   # a short connection's own fate does not matter here
                members = [asyncio.create_task(member(i)) for i in range(20)]
                await asyncio.sleep(0.5)
                pub = asyncio.create_task(publisher())
                sem = asyncio.Semaphore(16)
                async def limited(k):
                    async with sem: await short(k)
                await asyncio.gather(*(limited(k) for k in range(600)))
                stop.set()
                await asyncio.gather(*members, pub)
                print(json.dumps({"errors": errors, "min_received": min(received)}))
            asyncio.run(main())
            """, ["\(gw.port)", ca.caPath], timeout: 120)
        #expect(status == 0, "\(out)")
        let json = try #require(out.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }, "\(out)")
        #expect((json["errors"] as? [String])?.isEmpty == true, "\(json["errors"] ?? "-")")
        #expect((json["min_received"] as? Int ?? 0) >= 50, "every long-lived member kept receiving: \(json)")
        #expect(gw.process.isRunning)
    }

    /// A wss client that stops reading: OpenSSL meets a full send buffer mid-record (`WANT_WRITE`, partial
    /// writes), the node closes it as a slow consumer (1008) after dropping what had not started to leave;
    /// everything the client then reads must still decrypt and parse, ending in Close 1008 and close_notify.
    @Test func slowConsumerOverTLSKeepsTheRecordStreamIntact() throws {
        let ca = try TestCA()
        let gw = try GatewayProcess(
            ca.flags("server") + ["--max-outbound-bytes", "64KiB", "--slow-consumer-grace", "300ms", "--max-frame-rate", "0"],
            threads: 1)
        let (status, out) = try python(
            """
            import asyncio, struct, websockets
            port, ca = int(sys.argv[1]), sys.argv[2]
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.connect(("127.0.0.1", port))
            s = client_ctx(ca).wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False)
            buf = upgrade(s, "/ws")
            s.sendall(bytes([0x81, 0x80 | 28, 0, 0, 0, 0]) + b'{"op":"join","room":"flood"}')
            time.sleep(0.3)
            async def flood():
                async with websockets.connect("wss://127.0.0.1:%d/ws" % port, ssl=client_ctx(ca)) as ws:
                    await ws.recv()
                    # 16 MB: more than loopback's kernel buffers (tcp_wmem max 4 MB) can hide.
                    for i in range(4000):
                        if stop_flood.is_set(): break
                        await ws.send(json.dumps({"op": "publish", "room": "flood", "data": "y" * 4000}))
                        if i % 200 == 0: await asyncio.sleep(0.01)
            stop_flood = threading.Event()
            threading.Thread(target=lambda: asyncio.run(flood()), daemon=True).start()
            # Once the node has given up on us (past the 300 ms grace: its metric says so), read within its 2 s close
            # wait, so the close is clean. Waiting for the metric, not a fixed time: a slower build (TSan) gives up later.
            import urllib.request
            deadline = time.time() + 30
            while time.time() < deadline:
                m = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[3], timeout=5).read().decode()
                if "switchboard_slow_consumer_closes_total 1" in m.splitlines(): break
                time.sleep(0.02)
            # Drain quickly (the 2 s bound does not stretch on a loaded machine): the flood stops competing for
            # this process, and a larger receive buffer moves more per read.
            stop_flood.set()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            # Now read everything: every record must decrypt, every frame must parse.
            s.settimeout(5)
            while True:
                d = s.recv(65536)
                if d == b"": break
                buf += d
            frames, i, last = 0, 0, None
            while i < len(buf):
                b0, b1 = buf[i], buf[i + 1]; n = b1 & 0x7F; i += 2
                if n == 126: n = struct.unpack(">H", buf[i:i + 2])[0]; i += 2
                elif n == 127: n = struct.unpack(">Q", buf[i:i + 8])[0]; i += 8
                payload = buf[i:i + n]; i += n
                if b0 & 0x0F == 1: json.loads(payload)
                last = (b0 & 0x0F, payload[:2].hex())
                frames += 1
            print("frames", frames, "last", last, "clean", i == len(buf))
            """, ["\(gw.port)", ca.caPath, "\(gw.adminPort)"], timeout: 120)
        #expect(status == 0, "\(out)")
        #expect(out.contains("last (8, '0fa4') clean True"), "ends with Close 4004 (slow consumer), nothing torn: \(out)")
        #expect(try gw.metric("switchboard_slow_consumer_closes_total") == 1)
    }

    /// A drain answers a handshake in progress with 503; mid-TLS-handshake nothing can be encrypted yet, so
    /// the answer waits for the client's next bytes (`writeWaitsForReadable`) without spinning on `EPOLLOUT`,
    /// then leaves encrypted once the handshake completes.
    @Test func aDrainMidTLSHandshakeAnswers503OnceTheHandshakeEnds() throws {
        let ca = try TestCA()
        let gw = try GatewayProcess(ca.flags("server") + ["--drain-delay", "100ms", "--drain-window", "0", "--drain-deadline", "6s"], threads: 1)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: debianPython)
        p.arguments = [
            "-c",
            Self.prelude + "\n" + """
                raw, obj, inc, outg = bio_handshake(int(sys.argv[1]), sys.argv[2])
                # The client side is done; its Finished is held back, so the server is still mid-handshake.
                print("mid-handshake", flush=True)
                sys.stdin.readline()
                raw.sendall(outg.read())
                raw.settimeout(5)
                got = b""
                while True:
                    d = raw.recv(65536)
                    if not d: break
                    inc.write(d)
                    try:
                        while True:
                            chunk = obj.read(65536)
                            if not chunk: break
                            got += chunk
                    except (ssl.SSLWantReadError, ssl.SSLZeroReturnError): pass
                print("answer", got.split(b"\\r\\n")[0].decode(), flush=True)
                """, "\(gw.port)", ca.caPath
        ]
        let stdin = Pipe()
        let stdout = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        try p.run()
        let guardKill = DispatchWorkItem { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: guardKill)
        defer { guardKill.cancel() }
        #expect(String(decoding: stdout.fileHandleForReading.availableData, as: UTF8.self).contains("mid-handshake"))
        kill(gw.pid, SIGTERM)
        usleep(400_000)  // drain delay, then the paced close asks the handshake to answer 503
        func cpuTicks() -> Int {
            let stat = (try? String(contentsOfFile: "/proc/\(gw.pid)/stat", encoding: .utf8)) ?? ""
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            return fields.count > 12 ? (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0) : 0
        }
        let before = cpuTicks()
        usleep(600_000)
        let ticks = cpuTicks() - before
        #expect(ticks < 25, "the waiting answer must not spin the loop: \(ticks) ticks of CPU in 0.6 s")
        stdin.fileHandleForWriting.write(Data("go\n".utf8))
        p.waitUntilExit()
        let out = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(out.contains("answer HTTP/1.1 503"), "\(out)")
        #expect(gw.waitForExit(timeout: 8) == 0)
    }

    // MARK: - Bad input

    @Test func garbageTruncatedRecordsRenegotiationAndOldVersionsAreRefused() throws {
        let ca = try TestCA()
        let gw = try GatewayProcess(ca.flags("server") + ["--echo-path", "/echo", "--handshake-timeout", "5s"])
        // Garbage inside a handshake record: closed at once, counted.
        let junk = try RawSocket(port: gw.port)
        try junk.send([0x16, 0x03, 0x01, 0x00, 0x08] + Array("\u{1}GARBAGE".utf8))
        #expect(junk.waitForEOF(timeout: 1), "garbage record: closed at once")
        // A truncated record (the header announces 16 KiB) followed by FIN: closed at once, not at the deadline.
        let truncated = try RawSocket(port: gw.port)
        try truncated.send([0x16, 0x03, 0x01, 0x40, 0x00] + [UInt8](repeating: 0x01, count: 100))
        shutdown(truncated.fd, CInt(SHUT_WR))
        #expect(truncated.waitForEOF(timeout: 1), "truncated record then FIN: closed at once")
        // Garbage after the handshake, on an open WebSocket: the server fails the TLS session and closes.
        let (status, out) = try python(
            """
            port, ca = int(sys.argv[1]), sys.argv[2]
            raw, obj, inc, outg = bio_handshake(port, ca)
            raw.sendall(outg.read())
            raw.sendall(bytes([0x17, 0x03, 0x03, 0x00, 0x20]) + os.urandom(32))
            raw.settimeout(3); t0 = time.time()
            try:
                while raw.recv(65536): pass
            except OSError: pass
            print("closed", round(time.time() - t0, 3))
            """, ["\(gw.port)", ca.caPath])
        #expect(status == 0 && out.contains("closed 0."), "garbage after the handshake closes at once: \(out)")
        // A client that closes TCP without close_notify: an ordinary EOF (close code 1006), socket released.
        let (quietStatus, quietOut) = try python(
            """
            port, ca = int(sys.argv[1]), sys.argv[2]
            raw = socket.create_connection(("127.0.0.1", port))
            s = client_ctx(ca).wrap_socket(raw, server_hostname="127.0.0.1")
            upgrade(s, "/echo")
            raw2 = socket.socket(fileno=s.detach())   # the TCP socket without its TLS layer: no close_notify
            raw2.shutdown(socket.SHUT_WR)
            raw2.settimeout(3)
            t0 = time.time()
            try:
                while raw2.recv(65536): pass
            except OSError: pass
            print("closed", round(time.time() - t0, 3))
            """, ["\(gw.port)", ca.caPath])
        #expect(quietStatus == 0 && quietOut.contains("closed 0."), "no close_notify: treated as EOF at once: \(quietOut)")
        usleep(100_000)
        #expect(try gw.metric("switchboard_connections_closed_total{code=\"1006\"}") ?? 0 >= 1)
        // Renegotiation (TLS 1.2 'R' in s_client) is refused; the server keeps serving.
        let reneg = try sClient(port: gw.port, ca: ca.caPath, extra: ["-tls1_2"], input: "R\n")
        #expect(reneg.contains("RENEGOTIATING") && reneg.contains("no renegotiation"), "\(reneg)")
        #expect(try sClient(port: gw.port, ca: ca.caPath).contains("Verify return code: 0 (ok)"), "still serving after the refusal")
        let gw13 = try GatewayProcess(ca.flags("server") + ["--tls-min-version", "1.3"], threads: 1)
        let old = try sClient(port: gw13.port, ca: ca.caPath, extra: ["-tls1_2"])
        #expect(old.contains("alert protocol version") && old.contains("no peer certificate available"), "\(old)")
        usleep(200_000)
        #expect(try gw13.metric("switchboard_tls_handshakes_total{listener=\"public\",result=\"protocol_version\",version=\"none\"}") == 1)
        #expect(try gw.metric("switchboard_tls_handshakes_total{listener=\"public\",result=\"malformed\",version=\"none\"}") ?? 0 >= 1)
        #expect(try gw.metric("switchboard_tls_handshakes_total{listener=\"public\",result=\"eof\",version=\"none\"}") ?? 0 >= 1)
    }

    // MARK: - SNI, reload, startup

    @Test func sniPicksTheCertificateForTheRequestedName() throws {
        let ca = try TestCA()
        let gw = try GatewayProcess(ca.flags("server", "other"), threads: 1)
        #expect(
            try sClient(port: gw.port, ca: ca.caPath, extra: ["-servername", "other.test", "-verify_hostname", "other.test"])
                .contains("subject=CN = other"))
        #expect(try sClient(port: gw.port, ca: ca.caPath, extra: ["-noservername"]).contains("subject=CN = server"), "no SNI: the default")
        #expect(try sClient(port: gw.port, ca: ca.caPath, extra: ["-servername", "unknown.test"]).contains("subject=CN = server"), "unknown name: the default")
        let (status, out) = try python(
            """
            raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
            s = client_ctx(sys.argv[2]).wrap_socket(raw, server_hostname="other.test")
            print("verified", dict(x[0] for x in s.getpeercert()["subject"])["commonName"])
            """, ["\(gw.port)", ca.caPath])
        #expect(status == 0 && out.contains("verified other"), "\(out)")
    }

    @Test func sighupReloadsCertificatesKeepsOpenConnectionsAndSurvivesABadFile() throws {
        let ca = try TestCA()
        let cert = ca.path("live.pem")
        let key = ca.path("live.key.pem")
        try FileManager.default.copyItem(atPath: ca.path("server.pem"), toPath: cert)
        try FileManager.default.copyItem(atPath: ca.path("server.key.pem"), toPath: key)
        let gw = try GatewayProcess(["--echo-path", "/echo", "--tls-cert", cert, "--tls-key", key], threads: 2)
        // A connection opened before the reload, kept open across it, echoing after it.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: debianPython)
        p.arguments = [
            "-c",
            Self.prelude + "\n" + """
                raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
                s = client_ctx(sys.argv[2]).wrap_socket(raw, server_hostname="127.0.0.1")
                upgrade(s, "/echo")
                print("open", flush=True)
                sys.stdin.readline()
                s.sendall(bytes([0x81, 0x85, 0, 0, 0, 0]) + b"after")
                print("echo", s.recv(100).hex(), flush=True)
                """, "\(gw.port)", ca.caPath
        ]
        let stdin = Pipe()
        let stdout = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        try p.run()
        let guardKill = DispatchWorkItem { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: guardKill)
        defer { guardKill.cancel() }
        let firstLine = stdout.fileHandleForReading.availableData
        #expect(String(decoding: firstLine, as: UTF8.self).contains("open"))
        #expect(try sClient(port: gw.port, ca: ca.caPath).contains("subject=CN = server"))
        // New files in place, SIGHUP: new handshakes get the new certificate.
        try ca.issue("renewed")
        #expect(rename(ca.path("renewed.pem"), cert) == 0 && rename(ca.path("renewed.key.pem"), key) == 0)
        kill(gw.pid, SIGHUP)
        try waitUntil(5, "the reload log line") { gw.log().contains("TLS certificates reloaded") }
        #expect(try sClient(port: gw.port, ca: ca.caPath).contains("subject=CN = renewed"))
        // The old connection is untouched.
        stdin.fileHandleForWriting.write(Data("go\n".utf8))
        p.waitUntilExit()
        let echoed = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(echoed.contains("echo 8105" + Array("after".utf8).map { String(format: "%02x", $0) }.joined()), "\(echoed)")
        // A bad file: logged, the current certificate stays.
        try Data("not a certificate\n".utf8).write(to: URL(fileURLWithPath: cert))
        kill(gw.pid, SIGHUP)
        try waitUntil(5, "the failed-reload log line") { gw.log().contains("TLS reload failed") }
        #expect(try sClient(port: gw.port, ca: ca.caPath).contains("subject=CN = renewed"))
        #expect(try gw.metric("switchboard_tls_reloads_total{result=\"ok\"}") == 1)
        #expect(try gw.metric("switchboard_tls_reloads_total{result=\"failed\"}") == 1)
        #expect(gw.process.isRunning)
    }

    @Test func changedCertificateFilesAreReloadedWithoutASignalAndABadOneIsLoggedAndKeptOut() throws {
        let ca = try TestCA()
        let cert = ca.path("watched.pem")
        let key = ca.path("watched.key.pem")
        try FileManager.default.copyItem(atPath: ca.path("server.pem"), toPath: cert)
        try FileManager.default.copyItem(atPath: ca.path("server.key.pem"), toPath: key)
        let gw = try GatewayProcess(["--echo-path", "/echo", "--tls-cert", cert, "--tls-key", key, "--tls-reload-interval", "100ms"], threads: 1)
        #expect(try sClient(port: gw.port, ca: ca.caPath).contains("subject=CN = server"))
        // Renewed files renamed into place, no signal: the poll sees them and new handshakes get them.
        try ca.issue("renewed")
        #expect(rename(ca.path("renewed.pem"), cert) == 0 && rename(ca.path("renewed.key.pem"), key) == 0)
        try waitUntil(TestTiming.seconds(10), "the reload after the files changed") { gw.log().contains("TLS certificates reloaded") }
        #expect(gw.log().contains("TLS certificate files changed: reloading"))
        #expect(try sClient(port: gw.port, ca: ca.caPath).contains("subject=CN = renewed"))
        // A bad certificate written in place: logged, the renewed one stays, and it is tried once, not per poll.
        try Data("not a certificate\n".utf8).write(to: URL(fileURLWithPath: cert))
        try waitUntil(TestTiming.seconds(10), "the failed reload") { gw.log().contains("TLS reload failed") }
        usleep(600_000)
        #expect(try sClient(port: gw.port, ca: ca.caPath).contains("subject=CN = renewed"))
        #expect(try gw.metric("switchboard_tls_reloads_total{result=\"ok\"}") == 1)
        #expect(try gw.metric("switchboard_tls_reloads_total{result=\"failed\"}") == 1)
        #expect(gw.process.isRunning)
    }

    @Test func startupRefusesMismatchedOrUnreadableCertificatesAndWarnsOnExpiredOnes() throws {
        let ca = try TestCA()
        func start(_ flags: [String]) throws -> (Int32, String) {
            try runTool([GatewayProcess.binary.path, "--port", "\(try freePort())", "--admin-port", "0"] + flags, timeout: 10)
        }
        let (mismatch, mismatchOut) = try start(["--tls-cert", ca.path("server.pem"), "--tls-key", ca.path("stray.key.pem")])
        #expect(mismatch == 2)
        #expect(mismatchOut.split(separator: "\n").count == 1 && mismatchOut.contains("do not match"), "\(mismatchOut)")
        let (missing, missingOut) = try start(["--tls-cert", ca.path("nope.pem"), "--tls-key", ca.path("server.key.pem")])
        #expect(missing == 2 && missingOut.contains("nope.pem: cannot read"), "\(missingOut)")
        let (notPEM, notPEMOut) = try start(["--tls-cert", ca.path("server.ext"), "--tls-key", ca.path("server.key.pem")])
        #expect(notPEM == 2 && notPEMOut.contains("not a PEM certificate"), "\(notPEMOut)")
        let (unpaired, unpairedOut) = try start(["--tls-cert", ca.path("server.pem")])
        #expect(unpaired == 2 && unpairedOut.contains("come in pairs"), "\(unpairedOut)")
        let (version, versionOut) = try start(["--tls-min-version", "1.1"])
        #expect(version == 2 && versionOut.contains("expected 1.2 or 1.3"), "\(versionOut)")
        // Expired: served (clients decide), with a warning.
        let gw = try GatewayProcess(ca.flags("expired"), threads: 1)
        usleep(100_000)
        #expect(gw.log().contains("TLS certificate expired"))
        #expect(try sClient(port: gw.port, ca: ca.caPath).contains("certificate has expired"))
    }

    @Test func adminHTTPSAnswersWithStrictTransportSecurity() throws {
        let ca = try TestCA()
        let curl = { (port: Int, path: String) throws -> (Int32, String) in
            try runTool(["curl", "-si", "--max-time", "5", "--cacert", ca.caPath, "https://127.0.0.1:\(port)\(path)"])
        }
        let gw = try GatewayProcess(
            ["--admin-tls-cert", ca.path("server.pem"), "--admin-tls-key", ca.path("server.key.pem")], threads: 1,
            healthy: { port in (try? curl(port, "/health"))?.1.hasPrefix("HTTP/1.1 200") ?? false })
        let (_, health) = try curl(gw.adminPort, "/health")
        #expect(health.lowercased().contains("strict-transport-security: max-age=31536000"), "\(health)")
        let (_, metrics) = try curl(gw.adminPort, "/metrics")
        #expect(metrics.contains("switchboard_tls_handshakes_total{listener=\"admin\",result=\"ok\",version=\"1.3\"}"))
        #expect(metrics.contains("switchboard_tls_certificate_expiry_timestamp_seconds{listener=\"admin\""))
        // Plain HTTP to the HTTPS admin port: the same plain-text 400.
        let (status, body) = try httpGet(port: gw.adminPort, path: "/health")
        #expect(status == 400 && body.contains("use wss:// or https://"))
        #expect(gw.log().contains("\"admin\":\"https://127.0.0.1:\(gw.adminPort)/\""))
    }

    @Test func tlsFlagsParseWithEnvironmentTwins() throws {
        let ca = try TestCA()
        let env = [
            "SWITCHBOARD_TLS_CERT": "\(ca.path("server.pem")),\(ca.path("other.pem"))",
            "SWITCHBOARD_TLS_KEY": "\(ca.path("server.key.pem")),\(ca.path("other.key.pem"))", "SWITCHBOARD_TLS_MIN_VERSION": "1.3"
        ]
        let c = try Config.parse(arguments: [], environment: env)
        #expect(c.tls?.pairs.count == 2 && c.tls?.minimumVersion == .tls13)
        // Flags replace the environment's list (repeatable flags reset it on first use).
        let f = try Config.parse(arguments: ["--tls-cert", ca.path("other.pem"), "--tls-key", ca.path("other.key.pem")], environment: env)
        #expect(f.tls?.pairs.map(\.certificatePath) == [ca.path("other.pem")])
        #expect(Config.helpText.contains("--tls-cert") && Config.helpText.contains("SWITCHBOARD_ADMIN_TLS_KEY"))
        #expect(throws: Config.Invalid.self) { try Config.parse(arguments: ["--admin-tls-cert", ca.path("server.pem")], environment: [:]) }
    }
}
