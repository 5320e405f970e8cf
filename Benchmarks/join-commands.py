#!/usr/bin/env python3
"""Redis commands per join (issue 17; docs/benchmarks.md): a first client joins room "hot" and publishes once,
then N clients join it one after the other; prints the `INFO commandstats` deltas per join.

usage: Benchmarks/join-commands.py GATEWAY_PORT REDIS_PORT N      (a node on that Redis, --threads 1)
"""
import socket, sys, re, time, base64, os, json
port, rport, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def redis(*args):
    s = socket.create_connection(("127.0.0.1", rport))
    s.sendall(b"".join([f"*{len(args)}\r\n".encode()] + [f"${len(a)}\r\n{a}\r\n".encode() for a in args]))
    time.sleep(0.05); d = s.recv(1 << 20); s.close(); return d.decode(errors="replace")
def stats():
    info = redis("INFO", "commandstats"); out = {}
    for m in re.finditer(r"cmdstat_(\w+):calls=(\d+)", info): out[m.group(1)] = int(m.group(2))
    return out
def ws():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b'"hello"' not in buf: buf += s.recv(4096)
    return s
def send(s, text):
    p = text.encode(); mask = os.urandom(4)
    s.sendall(bytes([0x81, 0x80 | len(p)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(p)))
def until(s, needle):
    buf = b""
    while needle not in buf: buf += s.recv(4096)
first = ws(); send(first, '{"op":"join","room":"hot"}'); until(first, b'"joined"')
send(first, '{"op":"publish","room":"hot","data":1,"id":1}'); until(first, b'"message"')
time.sleep(0.3)
a = stats(); socks = []
for i in range(n):
    c = ws(); send(c, '{"op":"join","room":"hot"}'); until(c, b'"joined"'); socks.append(c)
time.sleep(0.5)   # presence writes of the last tick
b = stats()
d = {k: b.get(k, 0) - a.get(k, 0) for k in b if b.get(k, 0) != a.get(k, 0) and k not in ("info",)}
print(f"{n} joins: " + ", ".join(f"{k} {v} ({v / n:.2f}/join)" for k, v in sorted(d.items())))
