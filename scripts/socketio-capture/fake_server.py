"""A throwaway Engine.IO v4 / Socket.IO v5 server on 127.0.0.1 that records the exact bytes a real
client sends (one line per packet, repr of the bytes) and answers just enough for the client to go on:
the open packet, CONNECT answers, an ack for every event with an id, one server event `ask` with ack
id 12 on /chat, and pongs. WebSocket and HTTP long-polling (no upgrade offered). Standard library only.

    /usr/bin/python3 fake_server.py PORT LOG
"""
import base64, hashlib, json, socket, struct, sys, threading, time

PORT, LOG = int(sys.argv[1]), sys.argv[2]
log_lock = threading.Lock()


def record(kind, data):
    with log_lock, open(LOG, "a") as f:
        f.write(f"{kind} {data!r}\n")


def open_packet(upgrades):
    return "0" + json.dumps({"sid": "eio1", "upgrades": upgrades, "pingInterval": 25000, "pingTimeout": 20000, "maxPayload": 1000000}, separators=(",", ":"))


def answers(text):
    """Socket.IO answers to one client text packet (Engine.IO message without its '4')."""
    out = []
    if text.startswith("0"):
        ns = text[1:].split(",", 1)[0] if text[1:2] == "/" else "/"
        prefix = "" if ns == "/" else ns + ","
        out.append("0" + prefix + '{"sid":"sock-' + ns.strip("/") + '"}')
        if ns == "/chat":
            out.append("2/chat,12[\"ask\"]")
    elif text.startswith("2"):
        rest, ns = text[1:], "/"
        if rest.startswith("/"):
            ns, rest = rest.split(",", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        if digits:
            args = json.loads(rest)[1:]
            out.append("3" + ("" if ns == "/" else ns + ",") + digits + json.dumps(args, separators=(",", ":")))
    return out


def serve_ws(conn, head):
    key = [l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith("sec-websocket-key:")][0]
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n").encode())

    def send(text, opcode=1):
        data = text.encode() if isinstance(text, str) else text
        n = len(data)
        header = bytes([0x80 | opcode]) + (bytes([n]) if n < 126 else bytes([126]) + struct.pack("!H", n))
        conn.sendall(header + data)

    send(open_packet([]))
    buf = b""
    while True:
        while True:
            if len(buf) >= 2:
                n, off = buf[1] & 0x7F, 2
                if n == 126 and len(buf) >= 4:
                    n, off = struct.unpack("!H", buf[2:4])[0], 4
                if len(buf) >= off + 4 + n:
                    break
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk
        opcode, mask = buf[0] & 0x0F, buf[off:off + 4]
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[off + 4:off + 4 + n]))
        buf = buf[off + 4 + n:]
        if opcode == 8:
            record("ws-close", payload)
            return
        record("ws-text" if opcode == 1 else "ws-binary", payload)
        if opcode == 1 and payload.startswith(b"4"):
            for a in answers(payload[1:].decode()):
                send("4" + a)
        elif payload == b"1":
            return


polling_out = []


def serve_http(conn, head, body):
    first = head.split("\r\n")[0]
    if first.startswith("POST"):
        record("poll-post", body)
        for packet in body.decode().split("\x1e"):
            if packet.startswith("4"):
                polling_out.extend("4" + a for a in answers(packet[1:]))
        reply = b"ok"
    elif "sid=" not in first:
        reply = open_packet([]).encode()
    else:
        for _ in range(20):
            if polling_out:
                break
            time.sleep(0.05)
        reply = "\x1e".join(polling_out.pop(0) for _ in range(len(polling_out))).encode() or b"6"
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(reply) + reply)


def handle(conn):
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        head = head.decode()
        record("request", head.split("\r\n")[0])
        if "upgrade: websocket" in head.lower():
            serve_ws(conn, head)
            return
        length = [int(l.split(":")[1]) for l in head.split("\r\n") if l.lower().startswith("content-length:")]
        while length and len(body) < length[0]:
            body += conn.recv(65536)
        serve_http(conn, head, body)


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", PORT))
server.listen()
while True:
    c, _ = server.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
