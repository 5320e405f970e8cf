#!/usr/bin/env python3
# Issue 11 finding 2: CPU-heavy valid JSON. FLOODERS connections loop a 1 MiB publish (into rooms
# nobody is in) whose data is [0,0,0,...] ("zeros") or [{},{},...] ("objects"), while PAIRS sender/
# receiver pairs on the same node exchange small room messages at RATE/s each, and /health is polled
# every 100 ms. Prints p50/p99/max of the small messages' send->receive latency and of /health, per
# phase: baseline (no flood), zeros, objects. Targets: room p99 < 20 ms, /health < 50 ms.
# Usage: json-flood.py PORT ADMIN_PORT [SECONDS_PER_PHASE] [FLOODERS] [PAIRS] [RATE] [GATEWAY_PID]
# With GATEWAY_PID, each phase also prints the gateway's CPU time and its time waiting for a CPU
# (/proc/PID/schedstat: on a shared machine, a stall with a large run-queue wait is the machine's).
# PHASES=zeros,objects (environment) picks and orders the phases (default baseline,zeros,objects).
# Start the node with --threads 1 so every client shares one loop, e.g.
#   switchboard --threads 1 --port PORT --admin-port ADMIN_PORT --max-history-memory 64MiB
# Raw sockets only (Benchmarks/wsraw.py), no third-party package.
import json, os, socket, sys, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsraw import WS, http_get

port, admin = int(sys.argv[1]), int(sys.argv[2])
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 15
flooders = int(sys.argv[4]) if len(sys.argv) > 4 else 4
pairs = int(sys.argv[5]) if len(sys.argv) > 5 else 10
rate = float(sys.argv[6]) if len(sys.argv) > 6 else 50
gateway_pid = sys.argv[7] if len(sys.argv) > 7 else None

def schedstat():
    """(CPU seconds, run-queue wait seconds) summed over the gateway's threads."""
    cpu = wait = 0
    for t in os.listdir(f"/proc/{gateway_pid}/task"):
        try: c, w, _ = open(f"/proc/{gateway_pid}/task/{t}/schedstat").read().split()
        except (OSError, ValueError): continue
        cpu += int(c); wait += int(w)
    return cpu / 1e9, wait / 1e9
MIB = 1 << 20

def body(element, room):
    head, tail = '{"op":"publish","room":"%s","data":[' % room, ']}'
    n = (MIB - len(head) - len(tail) + 1) // (len(element) + 1)
    return (head + ",".join([element] * n) + tail).encode()

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")

def summary(name, xs):
    ms = [x * 1000 for x in xs]
    return f"{name}: n={len(ms)} p50 {pct(ms, .5):.1f} ms, p99 {pct(ms, .99):.1f} ms, max {max(ms) if ms else float('nan'):.1f} ms"

def run(phase, element):
    stop = threading.Event()
    lat, health, flood_sent, errors, flood_sockets = [], [], [0], [], []
    def flood(i):
        try:
            ws = WS(port); ws.recv()
            flood_sockets.append(ws.s)
            frame = WS.frame(body(element, f"flood-{i}"), zero_mask=True)
            assert len(frame) - 14 <= MIB
            while not stop.is_set():
                ws.s.sendall(frame); flood_sent[0] += 1
        except Exception as e:
            if not stop.is_set(): errors.append(f"flooder {i}: {e}")
    def receiver(ws):
        try:
            while True:
                m = json.loads(ws.recv())
                if m.get("op") == "message" and isinstance(m.get("data"), dict) and "t" in m["data"]:
                    lat.append(time.perf_counter() - m["data"]["t"])
        except Exception as e:
            if not stop.is_set(): errors.append(f"receiver: {e}")
    def sender(i, ws):
        n, period, next_at = 0, 1 / rate, time.perf_counter()
        while not stop.is_set():
            ws.send(json.dumps({"op": "publish", "room": f"chat-{i}", "data": {"t": time.perf_counter(), "n": n}}))
            n += 1; next_at += period
            time.sleep(max(0, next_at - time.perf_counter()))
    def poll_health():
        while not stop.is_set():
            try:
                status, _, dt = http_get(admin, "/health")
                health.append(dt)
            except Exception as e:
                errors.append(f"health: {e}")
            time.sleep(0.1)
    receivers, senders = [], []
    for i in range(pairs):
        r = WS(port); r.recv()
        r.send(json.dumps({"op": "join", "room": f"chat-{i}"}))
        while json.loads(r.recv()).get("op") != "joined": pass
        s = WS(port); s.recv()
        receivers.append(r); senders.append(s)
    threads = [threading.Thread(target=receiver, args=(r,), daemon=True) for r in receivers]
    threads += [threading.Thread(target=sender, args=(i, s), daemon=True) for i, s in enumerate(senders)]
    threads += [threading.Thread(target=poll_health, daemon=True)]
    if element: threads += [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(flooders)]
    for t in threads: t.start()
    time.sleep(2)           # warm-up: the flood reaches its steady state
    lat.clear(); health.clear(); flood_sent[0] = 0
    before = schedstat() if gateway_pid else None
    time.sleep(seconds)
    after = schedstat() if gateway_pid else None
    stop.set()
    sent = flood_sent[0]
    for ws in receivers + senders: ws.s.close()
    for s in flood_sockets:
        try: s.shutdown(socket.SHUT_RDWR)   # unblocks a flooder stuck in sendall
        except OSError: pass
    print(f"[{phase}] {seconds:.0f} s, {flooders if element else 0} flooders ({sent / seconds:.1f} MiB publishes/s), "
          f"{pairs} pairs at {rate:.0f}/s")
    print("  " + summary("room messages", lat))
    print("  " + summary("/health", health))
    if before:
        print(f"  gateway: CPU {100 * (after[0] - before[0]) / seconds:.0f} % of a core, "
              f"waited for a CPU {100 * (after[1] - before[1]) / seconds:.0f} % of the time")
    for e in errors[:5]: print("  error:", e)
    time.sleep(1)

phases = {"baseline": ("baseline", None), "zeros": ("zeros [0,0,...]", "0"), "objects": ("objects [{},{},...]", "{}")}
for name in os.environ.get("PHASES", "baseline,zeros,objects").split(","):
    run(*phases[name])
