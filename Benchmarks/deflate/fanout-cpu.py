"""Gateway CPU time per delivery in a room fan-out, permessage-deflate on vs off, for a 1 KiB JSON message
(issue 19: "within 1.5x").

  python3 Benchmarks/deflate/fanout-cpu.py [--bin .build/release/switchboard] [--members 500] [--messages 2000] [--rate 100]

For each mode a fresh node (2 loops) gets --members members in one room, spread over 4 reader processes
(selectors, every frame parsed and counted, nothing inflated), and one publisher that sends --messages
messages at --rate per second. "on": the node offers deflate and every member negotiates it (every
delivery is a compressed frame, one compression per loop per message); "off": `--permessage-deflate no`.
CPU = the node's utime + stime (/proc/PID/stat, clock ticks) over the publish phase, divided by the
deliveries the readers counted (members x messages, checked). CPU time, not throughput or wall time: the
machine is shared, and CPU time charged to the gateway process is what the other load disturbs least.
"""
import argparse, json, os, selectors, socket, struct, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import wsraw

OFFER = "permessage-deflate; client_max_window_bits"

def upgrade(port, deflate):
    s, rest, head = wsraw.handshake(port, headers=f"Sec-WebSocket-Extensions: {OFFER}\r\n" if deflate else "")
    if (b"permessage-deflate" in head.lower()) != deflate: raise ConnectionError("extension not as asked: " + head.decode())
    return s, rest

def masked(payload):
    n = len(payload)
    head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
    return head + b"\0\0\0\0" + payload      # the all-zero mask: valid, and no XOR pass in Python

def frames(buf):
    """(complete frames: list of (first byte, payload length), rest of the buffer)."""
    out, i = [], 0
    while len(buf) - i >= 2:
        b0, n, off = buf[i], buf[i + 1] & 0x7F, 2
        if n == 126:
            if len(buf) - i < 4: break
            n, off = struct.unpack_from("!H", buf, i + 2)[0], 4
        elif n == 127:
            if len(buf) - i < 10: break
            n, off = struct.unpack_from("!Q", buf, i + 2)[0], 10
        if len(buf) - i < off + n: break
        out.append((b0, n)); i += off + n
    return out, buf[i:]

def reader(port, count, deflate, expected):
    """One reader process: `count` members of room "fan"; counts message frames until each has `expected`."""
    sel = selectors.DefaultSelector()
    state = {}
    for _ in range(count):
        s, rest = upgrade(port, deflate)
        s.sendall(masked(b'{"op":"join","room":"fan"}'))
        state[s] = [rest, -2]          # hello and joined come first
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    joined = 0
    while joined < count:
        for key, _ in sel.select(5):
            st = state[key.fileobj]
            st[0] += key.fileobj.recv(1 << 16)
            got, st[0] = frames(st[0])
            before = st[1]
            st[1] += len(got)
            if before < 0 <= st[1]: joined += 1
    print("joined", flush=True)
    compressed = total = 0
    deadline = time.time() + 600
    while any(v[1] < expected for v in state.values()) and time.time() < deadline:
        for key, _ in sel.select(5):
            st = state[key.fileobj]
            data = key.fileobj.recv(1 << 18)
            if not data: raise SystemExit("a member was closed")
            st[0] += data
            got, st[0] = frames(st[0])
            st[1] += len(got)
            total += len(got)
            compressed += sum(1 for b0, _ in got if b0 & 0x40)
    print(json.dumps({"deliveries": total, "compressed": compressed}), flush=True)

def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])     # utime + stime (fields 14 and 15)

WORDS = ("the deploy of node two finished and latency is back under ten milliseconds while the queue drained "
         "slowly because redis was busy with a snapshot so we paused the rollout until the canary looked healthy "
         "again please check the dashboard before merging anything else today thanks").split()

def message(i):
    """A chat-like 1 KiB JSON message: words in a different order every time (compresses about 2x, as real chat
    text does; a repeated sentence would compress far better and flatter the figure)."""
    import random
    rng = random.Random(i)
    text = ""
    while len(text) < 960: text += rng.choice(WORDS) + " "
    return json.dumps({"op": "publish", "room": "fan", "data": {"user": "ada", "n": i, "ts": 1764800000000 + i, "text": text}})

def measure(binary, members, messages, rate, deflate, procs=4):
    port, admin = wsraw.free_port(), wsraw.free_port()
    node = subprocess.Popen([binary, "--port", str(port), "--admin-port", str(admin), "--threads", "2", "--log-level", "warn",
                             "--max-outbound-bytes", "16MiB", "--max-frame-rate", "0", "--history-size", "100",
                             "--permessage-deflate", "yes" if deflate else "no"], stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try: socket.create_connection(("127.0.0.1", port)).close(); break
            except OSError: time.sleep(0.05)
        share = [members // procs + (1 if i < members % procs else 0) for i in range(procs)]
        kids = [subprocess.Popen([sys.executable, __file__, "--reader", str(port), str(c), "1" if deflate else "0", str(messages)],
                                 stdout=subprocess.PIPE, text=True) for c in share]
        for k in kids:
            if k.stdout.readline().strip() != "joined": raise SystemExit("a reader failed")
        pub, _ = upgrade(port, False)
        time.sleep(1)
        t0, w0 = cpu_ticks(node.pid), time.time()
        for i in range(messages):
            pub.sendall(masked(message(i).encode()))
            time.sleep(max(0, w0 + (i + 1) / rate - time.time()))
        results = [json.loads(k.stdout.readline()) for k in kids]
        t1, w1 = cpu_ticks(node.pid), time.time()
        deliveries = sum(r["deliveries"] for r in results)
        if deliveries != members * messages: raise SystemExit(f"{deliveries} deliveries, expected {members * messages}")
        compressed = sum(r["compressed"] for r in results)
        hz = os.sysconf("SC_CLK_TCK")
        return {"deflate": deflate, "members": members, "messages": messages, "message_bytes": len(json.dumps(json.loads(message(0))["data"], separators=(",", ":"))),
                "deliveries": deliveries, "compressed_deliveries": compressed, "gateway_cpu_s": (t1 - t0) / hz, "wall_s": round(w1 - w0, 2),
                "cpu_ns_per_delivery": round((t1 - t0) / hz / deliveries * 1e9)}
    finally:
        node.terminate(); node.wait()

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--reader":
        reader(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])); sys.exit(0)
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=".build/release/switchboard")
    ap.add_argument("--members", type=int, default=500)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    rows = []
    for r in range(a.rounds):
        for deflate in (False, True):
            rows.append(measure(a.bin, a.members, a.messages, a.rate, deflate))
            print(json.dumps(rows[-1]), flush=True)
    med = {}
    for deflate in (False, True):
        v = sorted(x["cpu_ns_per_delivery"] for x in rows if x["deflate"] == deflate)
        med[deflate] = v[len(v) // 2]
        print(f"deflate {'on ' if deflate else 'off'}: {med[deflate]} ns of gateway CPU per delivery (median of {len(v)}; {v})")
    print(f"on / off = {med[True] / med[False]:.2f}")
