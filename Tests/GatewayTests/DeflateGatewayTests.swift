import Foundation
import Testing

/// permessage-deflate through the real binary (cases C39 and C40 of ../shared/cases): negotiation answers on
/// the wire, a compressed message echoed, decompression bombs closed 1009, and a room message that a
/// compressing client (Python `websockets`, which offers deflate by default) receives intact.
@Suite struct DeflateGatewayTests {
    static let script = """
        import base64, os, socket, struct, sys, time, zlib
        port = int(sys.argv[1])
        def upgrade(ext, path="/echo"):
            s = socket.create_connection(("127.0.0.1", port)); s.settimeout(5)
            key = base64.b64encode(os.urandom(16)).decode()
            req = "GET %s HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: %s\\r\\nSec-WebSocket-Version: 13\\r\\n" % (path, key)
            if ext: req += "Sec-WebSocket-Extensions: %s\\r\\n" % ext
            s.sendall((req + "\\r\\n").encode()); d = b""
            while b"\\r\\n\\r\\n" not in d: d += s.recv(4096)
            head, rest = d.split(b"\\r\\n\\r\\n", 1)
            lines = head.decode().split("\\r\\n")
            ext = [l.split(":", 1)[1].strip() for l in lines[1:] if l.lower().startswith("sec-websocket-extensions")]
            return s, lines[0], (ext[0] if ext else None), rest
        def frame(payload, rsv1=True, op=1, fin=True):
            b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | op; n = len(payload)
            h = bytes([b0, 0x80 | n]) if n < 126 else (bytes([b0, 0xFE]) + struct.pack(">H", n) if n < 65536 else bytes([b0, 0xFF]) + struct.pack(">Q", n))
            return h + b"\\0\\0\\0\\0" + payload
        def read_frame(s, buf):
            while len(buf) < 2: buf += s.recv(65536)
            n = buf[1] & 0x7F; off = 2
            if n == 126:
                while len(buf) < 4: buf += s.recv(65536)
                n = struct.unpack(">H", buf[2:4])[0]; off = 4
            elif n == 127:
                while len(buf) < 10: buf += s.recv(65536)
                n = struct.unpack(">Q", buf[2:10])[0]; off = 10
            while len(buf) < off + n: buf += s.recv(1 << 20)
            return buf[0], buf[off:off + n], buf[off + n:]
        def deflate(data, level=6):
            c = zlib.compressobj(level, zlib.DEFLATED, -15); out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
            assert out.endswith(b"\\0\\0\\xff\\xff"); return out[:-4]
        def inflate(data): return zlib.decompressobj(-15).decompress(data + b"\\0\\0\\xff\\xff")
        # C39 (a)-(g): accepted with sound parameters, or declined (101 without the header), never refused.
        cases = {
            "permessage-deflate; client_max_window_bits": lambda e: e and "client_max_window_bits=" in e,
            "permessage-deflate": lambda e: e and "client_max_window_bits" not in e,
            "permessage-deflate; client_max_window_bits=10": lambda e: e and ("client_max_window_bits" not in e or "client_max_window_bits=10" in e or "client_max_window_bits=9" in e or "client_max_window_bits=8" in e),
            "permessage-deflate; server_max_window_bits=10": lambda e: e is None or "server_max_window_bits=10" in e or "server_max_window_bits=9" in e,
            "permessage-deflate; server_max_window_bits=8": lambda e: e is None,
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits": lambda e: e and "server_max_window_bits" not in e,
            "permessage-deflate; foo=1": lambda e: e is None,
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover": lambda e: e is None,
            "permessage-deflate; client_max_window_bits=16": lambda e: e is None,
            "permessage-deflate; server_max_window_bits=7": lambda e: e is None,
        }
        for offer, ok in cases.items():
            s, status, ext, _ = upgrade(offer); s.close()
            assert status.startswith("HTTP/1.1 101"), (offer, status)
            assert ok(ext), (offer, ext)
        # C39 (h): RFC 7692's compressed "Hello" comes back as "Hello"; two identical 1 KiB messages come back as
        # compressed frames of the same length (no context takeover).
        s, _, ext, buf = upgrade("permessage-deflate; client_max_window_bits")
        s.sendall(bytes.fromhex("c18700000000f248cdc9c90700"))
        b0, p, buf = read_frame(s, buf)
        assert (inflate(p) if b0 & 0x40 else p) == b"Hello", p
        kib = (b'{"text":"' + b"hello switchboard " * 56 + b'"}')[:1024]
        lengths = []
        for _ in range(2):
            s.sendall(frame(deflate(kib)))
            b0, p, buf = read_frame(s, buf)
            assert b0 & 0x40 and inflate(p) == kib, "a compressed echo"
            lengths.append(len(p))
        assert lengths[0] == lengths[1], lengths
        s.close()
        # C40: 16 MiB of zeros, whole and in 64 fragments, closed 1009 at once; 900 KiB of text echoed exactly.
        bomb = deflate(b"\\0" * (16 << 20), 9)
        parts = [bomb[i * len(bomb) // 64:(i + 1) * len(bomb) // 64] for i in range(64)]
        for name, wire in [("whole", frame(bomb)),
                           ("64 fragments", b"".join(frame(p, rsv1=(i == 0), op=(1 if i == 0 else 0), fin=(i == 63)) for i, p in enumerate(parts)))]:
            s, _, _, buf = upgrade("permessage-deflate; client_max_window_bits")
            t = time.time(); s.sendall(wire)
            b0, p, buf = read_frame(s, buf)
            assert b0 & 0x0F == 8 and struct.unpack(">H", p[:2])[0] == 1009, (name, b0, p[:2])
            assert time.time() - t < 2, name
            s.close()
        s, _, _, buf = upgrade("permessage-deflate; client_max_window_bits")
        text = b"abcdefgh" * (900 * 128)
        s.sendall(frame(deflate(text)))
        b0, p, buf = read_frame(s, buf)
        assert (inflate(p) if b0 & 0x40 else p) == text
        s.close()
        print("deflate: 5 passed, 0 failed")
        """

    @Test func negotiationEchoAndBombsThroughTheGateway() throws {
        let gw = try GatewayProcess(["--echo-path", "/echo", "--max-message-size", "1MiB"], threads: 1)
        let (status, out) = try runTool([debianPython, "-c", Self.script, "\(gw.port)"], timeout: 60)
        #expect(status == 0, "\(out)")
        #expect(out.contains("5 passed, 0 failed"), "\(out)")
        #expect(try gw.metric("switchboard_connections_closed_total{code=\"1009\"}") == 2)
    }

    /// A room message to a member that negotiated deflate (Python `websockets` offers it by default) and to
    /// one that did not: both get the same data; the compressed copy is made once per loop.
    @Test func roomMessageReachesCompressingAndPlainMembers() throws {
        let gw = try GatewayProcess(threads: 1)
        let (status, out) = try runTool(
            [
                debianPython, "-c",
                """
                import asyncio, json, sys, websockets
                async def main(port):
                    url = "ws://127.0.0.1:%s/ws" % port
                    async with websockets.connect(url) as zipped, websockets.connect(url, compression=None) as plain:
                        # websockets < 14 (Debian's) has response_headers; the new client has response.headers.
                        head = lambda ws: ws.response_headers if hasattr(ws, "response_headers") else ws.response.headers
                        assert head(zipped).get("Sec-WebSocket-Extensions", "").startswith("permessage-deflate")
                        assert "Sec-WebSocket-Extensions" not in head(plain)
                        for ws in (zipped, plain):
                            await ws.recv()
                            await ws.send(json.dumps({"op": "join", "room": "zip"})); await ws.recv()
                        data = {"text": "chat " * 300}
                        await plain.send(json.dumps({"op": "publish", "room": "zip", "data": data, "id": 1}))
                        for ws in (zipped, plain):
                            while True:
                                m = json.loads(await ws.recv())
                                if m["op"] == "message": break
                            assert m["data"] == data
                    print("room deflate: 1 passed, 0 failed")
                asyncio.run(main(sys.argv[1]))
                """, "\(gw.port)"
            ], timeout: 60)
        #expect(status == 0, "\(out)")
        #expect(out.contains("1 passed, 0 failed"), "\(out)")
    }

    /// Room streams (context takeover shared by a room's members, `--deflate-room-contexts`) through the real
    /// binary on two loops, read by a client that inflates with one zlib window per connection as RFC 7692
    /// §7.2.2 says: members in step from the start, one joining mid-stream, one in two busy rooms, one that
    /// asked for `server_no_context_takeover` (inflated message by message with an empty window), one with
    /// `server_max_window_bits=10` (a 1 KiB zlib window, which refuses references further back), one plain,
    /// and replies compressed alone between room messages. Every member gets every message intact and in order.
    @Test func roomStreamsKeepEveryMemberInStep() throws {
        let gw = try GatewayProcess(threads: 2)
        let (status, out) = try runTool([debianPython, "-c", Self.roomStreamScript, "\(gw.port)", "300"], timeout: 120)
        #expect(status == 0, "\(out)")
        #expect(out.contains("deflate streams: passed"), "\(out)")
        #expect(try gw.metric(#"switchboard_deflate_deliveries_total{context="room"}"#) ?? 0 > 300)
        #expect(try gw.metric("switchboard_deflate_room_context_resets_total") ?? 0 >= 2)
    }

    static let roomStreamScript = #"""
        import base64, json, os, random, socket, struct, sys, time, zlib
        port = int(sys.argv[1]); N = int(sys.argv[2]) if len(sys.argv) > 2 else 200
        class Client:
            def __init__(self, name, ext, wbits=15, fresh=False):
                self.name = name; self.fresh = fresh; self.wbits = wbits
                s = socket.create_connection(("127.0.0.1", port)); s.settimeout(10)
                key = base64.b64encode(os.urandom(16)).decode()
                req = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % key
                if ext: req += "Sec-WebSocket-Extensions: %s\r\n" % ext
                s.sendall((req + "\r\n").encode()); d = b""
                while b"\r\n\r\n" not in d: d += s.recv(4096)
                head, self.buf = d.split(b"\r\n\r\n", 1)
                lines = head.decode().split("\r\n"); assert lines[0].startswith("HTTP/1.1 101"), lines[0]
                e = [l.split(":", 1)[1].strip() for l in lines[1:] if l.lower().startswith("sec-websocket-extensions")]
                self.ext = e[0] if e else None
                self.s = s; self.inf = zlib.decompressobj(-wbits); self.wire = 0; self.raw = 0; self.zipped = 0
            def send(self, obj):
                p = json.dumps(obj).encode(); n = len(p)
                h = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0xFE]) + struct.pack(">H", n)
                self.s.sendall(h + b"\0\0\0\0" + p)
            def recv(self):
                while True:
                    while len(self.buf) < 2: self.buf += self.s.recv(65536)
                    n = self.buf[1] & 0x7F; off = 2
                    if n == 126:
                        while len(self.buf) < 4: self.buf += self.s.recv(65536)
                        n = struct.unpack(">H", self.buf[2:4])[0]; off = 4
                    elif n == 127:
                        while len(self.buf) < 10: self.buf += self.s.recv(65536)
                        n = struct.unpack(">Q", self.buf[2:10])[0]; off = 10
                    while len(self.buf) < off + n: self.buf += self.s.recv(1 << 20)
                    b0 = self.buf[0]; p = self.buf[off:off + n]; self.buf = self.buf[off + n:]
                    if b0 & 0x0F == 9: continue
                    self.wire += n
                    if b0 & 0x40:
                        assert self.ext, "RSV1 without the extension"
                        if self.fresh: p = zlib.decompressobj(-self.wbits).decompress(p + b"\0\0\xff\xff")
                        else: p = self.inf.decompress(p + b"\0\0\xff\xff")
                        self.zipped += 1
                    self.raw += len(p)
                    return json.loads(p)
            def until(self, op):
                while True:
                    m = self.recv()
                    if m.get("op") == op or m.get("type") == op: return m
        words = ("the deploy finished and smoke tests are green can someone review this before lunch it touches reconnect backoff "
                 "latency went up around failover recovered after two minutes out thursday afternoon covering on call ping "
                 "directly if pager goes off reminder retro at four in usual room bring one thing that went well pushed fix "
                 "for flaky drain test timer wheel was rounding deadline down instead of up so fired tick early").split()
        random.seed(7)
        def text(i): return " ".join(random.choice(words) for _ in range(8 + i % 20))
        users = [("u_48213", "Alice Martin"), ("u_10077", "Priya Raman"), ("u_55120", "Tomas Okafor")]
        pub = Client("pub", None); pub.until("hello")
        A = Client("A", "permessage-deflate; client_max_window_bits")
        B = Client("B", "permessage-deflate; client_max_window_bits")
        C = Client("C", "permessage-deflate")
        D = Client("D", "permessage-deflate; server_no_context_takeover", fresh=True)
        E = Client("E", "permessage-deflate; server_max_window_bits=10", wbits=10)
        F = Client("F", None)
        assert "server_no_context_takeover" not in A.ext, A.ext
        assert "server_no_context_takeover" in D.ext, D.ext
        for c in (A, C, D, E, F):
            c.until("hello"); c.send({"op": "join", "room": "chat"}); c.until("joined")
        C.send({"op": "join", "room": "other"}); C.until("joined")
        B.until("hello")
        sent = {"chat": [], "other": []}
        got = {c.name: {"chat": [], "other": []} for c in (A, B, C, D, E, F)}
        def drain(c, rooms):
            want = {r: len(sent[r]) for r in rooms}
            while any(len(got[c.name][r]) < want[r] for r in rooms):
                m = c.recv()
                if m.get("op") == "message": got[c.name][m["room"]].append(m["data"])
        for i in range(N):
            room = "other" if i % 3 == 2 else "chat"
            u = users[i % 3]
            data = {"id": "01JE4Q%06dK7X2M9" % i, "user": {"id": u[0], "name": u[1]}, "ts": 1733299200123 + i * 3170, "text": text(i)}
            sent[room].append(data); pub.send({"op": "publish", "room": room, "data": data})
            if i == N // 4:
                B.send({"op": "join", "room": "chat"}); B.until("joined")
                got["B"]["chat"] = []; skip = len(sent["chat"])
            if i % 40 == 39:
                A.send({"op": "presence", "room": "chat", "id": i}); # a reply compressed alone in between
            if i % 10 == 9:
                for c in (A, C, D, E, F): drain(c, ["chat"] + (["other"] if c is C else []))
                got["B"]["chat"]  # B drained at the end
        for c in (A, C, D, E, F): drain(c, ["chat"] + (["other"] if c is C else []))
        want_b = sent["chat"][skip + 2:]
        while not got["B"]["chat"] or got["B"]["chat"][-1] != sent["chat"][-1]:
            m = B.recv()
            if m.get("op") == "message": got["B"]["chat"].append(m["data"])
        for c in (A, C, D, E, F):
            assert got[c.name]["chat"] == sent["chat"], c.name
        assert got["C"]["other"] == sent["other"]
        k = len(sent["chat"]) - len(got["B"]["chat"])
        assert k <= skip + 2 and got["B"]["chat"] == sent["chat"][k:], (k, skip)
        for c in (A, B, C, D, E, F):
            print("%s zipped=%d wire=%d raw=%d ratio=%.2f" % (c.name, c.zipped, c.wire, c.raw, c.raw / max(1, c.wire)))
        assert A.raw / A.wire > 2.0 and B.raw / B.wire > 2.0, "room streams should shrink repeated keys"
        print("deflate streams: passed")
        """#
}
