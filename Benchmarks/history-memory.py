#!/usr/bin/env python3
# Issue 11 finding 3: RSS of an in-process-bus node while one client publishes COUNT x 1 MiB messages
# (default 2,000) round-robin into 4 rooms nobody is in. With --max-history-memory M the node must stay
# under M + 150 MB. Prints RSS before/after and the node's switchboard_memory_bytes breakdown.
# Usage: history-memory.py PORT ADMIN_PORT PID [COUNT] [analytics]
# Start the node e.g.: switchboard --port PORT --admin-port ADMIN_PORT --max-history-memory 256MiB
# With "analytics", the 1 MiB messages are analytics events instead (start the node with
# --analytics-rate 100000 --analytics-burst 100000 so none is throttled; --analytics-bytes bounds them).
# Raw sockets only (Benchmarks/wsraw.py), no third-party package.
import json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsraw import WS, http_get, rss_mib

port, admin, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
count = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
analytics = len(sys.argv) > 5 and sys.argv[5] == "analytics"
MIB = 1 << 20

def memory_metrics():
    _, body, _ = http_get(admin, "/metrics")
    return {l.split()[0]: float(l.split()[1]) for l in body.splitlines()
            if l.startswith(("switchboard_memory_bytes", "switchboard_history_evictions_total"))}

ws = WS(port)
ws.recv()   # hello
before = rss_mib(pid)
print(f"RSS before: {before:.1f} MiB", flush=True)
template = '{"op":"analytics","event":"mem","room":"mem-%d","data":"%s"}' if analytics else '{"op":"publish","room":"mem-%d","data":"%s"}'
payload = "x" * (MIB - len(template % (0, "")))   # the whole message is exactly 1 MiB (the --max-message-size default)
frames = [WS.frame((template % (r, payload)).encode(), zero_mask=True) for r in range(4)]
assert len(frames[0]) - 14 == MIB, len(frames[0])
peak = before
t = time.time()
for i in range(count):
    ws.s.sendall(frames[i % 4])
    if i % 100 == 99:
        # A publish with an id: its ack means every earlier publish on this connection was handled.
        ws.send(json.dumps({"op": "publish", "room": "mem-sync", "data": i, "id": i}))
        while json.loads(ws.recv()).get("op") != "ack": pass
        peak = max(peak, rss_mib(pid))
ws.send(json.dumps({"op": "publish", "room": "mem-sync", "data": -1, "id": "end"}))
while json.loads(ws.recv()).get("op") != "ack": pass
elapsed = time.time() - t
time.sleep(1)
after = rss_mib(pid)
peak = max(peak, after)
print(f"sent {count} x 1 MiB {'analytics events' if analytics else 'publishes into 4 rooms'} in {elapsed:.1f} s")
print(f"RSS after: {after:.1f} MiB (peak sampled every 100 publishes: {peak:.1f} MiB; growth {after - before:.1f} MiB)")
for k, v in sorted(memory_metrics().items()): print(f"  {k} {v:.0f}")
