"""Idle memory per connection with permessage-deflate negotiated and without (issue 19: "within 2 KiB").

  python3 Benchmarks/deflate/idle-rss.py [--bin .build/release/switchboard] [--connections 10000] [--procs 4]

For each mode a fresh node (2 loops, pings off for the run) gets N WebSocket connections from --procs client
processes (blocking sockets, each process at most 20,000 descriptors), every one upgraded (the 101 checked
for the extension, or its absence) and past `hello`; then they sit idle. The node's VmRSS (/proc/PID/status)
is read before the first connection (after 200 warm-up connections were opened and closed, so the loops'
read buffers and the allocator's first arenas are counted in neither) and 3 s after the last; per connection
= the difference / N. Memory, not time: the busy machine does not change it.
"""
import argparse, json, os, socket, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import wsraw

OFFER = "permessage-deflate; client_max_window_bits"

def upgrade(port, deflate):
    s, rest, head = wsraw.handshake(port, headers=f"Sec-WebSocket-Extensions: {OFFER}\r\n" if deflate else "")
    if (b"permessage-deflate" in head.lower()) != deflate: raise ConnectionError("extension not as asked: " + head.decode())
    while len(rest) < 2 or len(rest) < 2 + (rest[1] & 0x7F):   # the hello frame (short, uncompressed)
        rest += s.recv(4096)
    return s

def client(port, count, deflate):
    """One client process: open `count` connections, say so, hold them until stdin closes."""
    socks = [upgrade(port, deflate) for _ in range(count)]
    print(len(socks), flush=True)
    sys.stdin.read()

def measure(binary, n, procs, deflate):
    port, admin = wsraw.free_port(), wsraw.free_port()
    node = subprocess.Popen([binary, "--port", str(port), "--admin-port", str(admin), "--threads", "2", "--log-level", "warn",
                             "--ping-interval", "1h", "--pong-timeout", "1h", "--max-connections", str(n + 1000),
                             "--permessage-deflate", "yes"], stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try: socket.create_connection(("127.0.0.1", port)).close(); break
            except OSError: time.sleep(0.05)
        warm = [upgrade(port, deflate) for _ in range(200)]
        for s in warm: s.close()
        time.sleep(2)
        before = wsraw.rss_bytes(node.pid)
        share = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        kids = [subprocess.Popen([sys.executable, __file__, "--client", str(port), str(c), "1" if deflate else "0"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for c in share]
        opened = sum(int(k.stdout.readline() or 0) for k in kids)
        if opened != n: raise SystemExit(f"only {opened} of {n} connections opened")
        time.sleep(3)
        after = wsraw.rss_bytes(node.pid)
        for k in kids: k.stdin.close()
        for k in kids: k.wait()
        return before, after
    finally:
        node.terminate(); node.wait()

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"); sys.exit(0)
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=".build/release/switchboard")
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    rows = []
    for r in range(a.rounds):
        for deflate in (False, True):
            before, after = measure(a.bin, a.connections, a.procs, deflate)
            per = (after - before) / a.connections
            rows.append({"deflate": deflate, "connections": a.connections, "rss_before": before, "rss_after": after, "bytes_per_connection": round(per)})
            print(json.dumps(rows[-1]), flush=True)
    for deflate in (False, True):
        v = sorted(x["bytes_per_connection"] for x in rows if x["deflate"] == deflate)
        print(f"{'deflate negotiated' if deflate else 'plain             '}: {v[len(v) // 2]} B per idle connection (median of {len(v)})")
