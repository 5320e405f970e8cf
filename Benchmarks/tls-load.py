#!/usr/bin/env python3
"""TLS load for Switchboard (issue 15, case C34): idle RSS per wss:// connection against ws://, and TLS
handshakes/s. Python 3 standard library only (asyncio + ssl), so it runs wherever the tests run;
switchboard-bench has no TLS client yet. The client side is Python, so the handshake rate it reports is
bounded by this loader's CPU as much as by the gateway's: treat it as a floor.

  tls-load.py idle --port P [--tls] --connections 10000 --procs 4 --hold 10 --gateway-pid PID \
                   [--api http://127.0.0.1:A --api-key K --burst 65536]
      opens the connections split over --procs worker processes (at most 20,000 fds each), waits for
      every `hello`, holds, and reads the gateway's VmRSS before, after opening, (with --api) 10 s after
      one --burst-byte message published to every connection, and 10 s after closing everything.
      --trim-with-gdb also reads it after malloc_trim(0) in the gateway (live state vs. kept free heap).
  tls-load.py handshakes --port P [--tls] --procs 2 --concurrency 64 --duration 10
      connects, upgrades on /echo and closes (RST), in a loop; prints completed upgrades per second.
  tls-load.py fanout --port P [--tls] --connections 1000 --procs 2 --messages 2000 --size 64 --gateway-pid PID
      members join one room, one publisher sends --messages publishes as fast as it can; prints deliveries/s
      (bounded by the Python members) and the gateway's CPU per delivery (the comparable figure).

Prints one JSON line with the figures. Loopback only.
"""
import argparse, asyncio, json, os, socket, ssl, struct, subprocess, sys, time, urllib.request

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE   # loopback load against a test certificate
    return ctx


async def open_ws(port, tls, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_context() if tls else None,
                                                   server_hostname="127.0.0.1" if tls else None)
    writer.write(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, KEY)).encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head[:40])
    return reader, writer


async def read_frame(reader):
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack(">H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", await reader.readexactly(8))[0]
    return b0 & 0x0F, await reader.readexactly(n)


def masked_text(payload):
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0xFE]) + struct.pack(">H", n)
    return head + b"\0\0\0\0" + payload


async def worker_idle(port, tls, count, join):
    sem = asyncio.Semaphore(200)
    conns, failures = [], 0

    async def one():
        nonlocal failures
        async with sem:
            try:
                r, w = await open_ws(port, tls, "/ws")
                op, hello = await read_frame(r)
                assert b'"hello"' in hello
                if join:
                    w.write(masked_text(b'{"op":"join","room":"tls-burst"}'))
                    while b'"joined"' not in (await read_frame(r))[1]:
                        pass
                conns.append((r, w))
            except Exception:
                failures += 1

    await asyncio.gather(*(one() for _ in range(count)))
    print(json.dumps({"ready": len(conns), "failures": failures}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        cmd = line.strip()
        if cmd == "burst":
            async def got(r):
                while True:
                    op, p = await read_frame(r)
                    if b'"message"' in p[:64]:
                        return len(p)
            sizes = await asyncio.gather(*(got(r) for r, _ in conns), return_exceptions=True)
            print(json.dumps({"burst": sum(1 for s in sizes if isinstance(s, int))}), flush=True)
        elif cmd == "close" or not line:
            for r, w in conns:
                w.close()
            await asyncio.sleep(0.5)
            print(json.dumps({"closed": len(conns)}), flush=True)
            return


async def worker_fanout(port, tls, count, expect):
    conns = []
    for _ in range(count):
        r, w = await open_ws(port, tls, "/ws")
        await read_frame(r)
        w.write(masked_text(b'{"op":"join","room":"tls-fan"}'))
        while b'"joined"' not in (await read_frame(r))[1]:
            pass
        conns.append((r, w))
    print(json.dumps({"ready": len(conns)}), flush=True)

    async def member(r):
        got = 0
        try:
            while got < expect:
                op, p = await asyncio.wait_for(read_frame(r), 20)
                if op == 1 and b'"message"' in p[:40]:
                    got += 1
        except Exception:
            pass
        return got

    counts = await asyncio.gather(*(member(r) for r, _ in conns))
    print(json.dumps({"received": sum(counts), "complete": sum(1 for c in counts if c == expect), "t": time.time()}), flush=True)


async def publish(port, tls, messages, size):
    r, w = await open_ws(port, tls, "/ws")
    await read_frame(r)
    body = masked_text(json.dumps({"op": "publish", "room": "tls-fan", "data": "x" * size}).encode())
    for i in range(messages):
        w.write(body)
        if i % 100 == 99:
            await w.drain()
    await w.drain()
    await asyncio.sleep(30)   # stays open until the coordinator is done


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def worker_handshakes(port, tls, concurrency, duration):
    done, failed = 0, 0
    end = time.time() + duration

    async def slot():
        nonlocal done, failed
        while time.time() < end:
            try:
                r, w = await open_ws(port, tls, "/echo")
                sock = w.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                w.transport.abort()
                done += 1
            except Exception:
                failed += 1

    await asyncio.gather(*(slot() for _ in range(concurrency)))
    print(json.dumps({"done": done, "failed": failed}), flush=True)


def spawn(args, extra):
    return subprocess.Popen([sys.executable, __file__, "worker"] + extra, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, bufsize=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["idle", "handshakes", "fanout", "worker"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--hold", type=float, default=10)
    ap.add_argument("--gateway-pid", type=int)
    ap.add_argument("--api")
    ap.add_argument("--api-key")
    ap.add_argument("--burst", type=int, default=65536)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--kind")
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--trim-with-gdb", action="store_true", help="after the idle reading, call malloc_trim(0) in the gateway (gdb) and read RSS again")
    a = ap.parse_args()
    if a.mode == "worker":
        if a.kind == "idle":
            asyncio.run(worker_idle(a.port, a.tls, a.connections, a.api is not None))
        elif a.kind == "fanout":
            asyncio.run(worker_fanout(a.port, a.tls, a.connections, a.messages))
        else:
            asyncio.run(worker_handshakes(a.port, a.tls, a.concurrency, a.duration))
        return
    common = ["--port", str(a.port)] + (["--tls"] if a.tls else [])
    if a.mode == "fanout":
        per = [a.connections // a.procs + (1 if i < a.connections % a.procs else 0) for i in range(a.procs)]
        ws = [spawn(a, common + ["--kind", "fanout", "--connections", str(n), "--messages", str(a.messages)]) for n in per]
        ready = sum(json.loads(w.stdout.readline())["ready"] for w in ws)
        c0, t0 = cpu_ticks(a.gateway_pid), time.time()
        import threading
        threading.Thread(target=lambda: asyncio.run(publish(a.port, a.tls, a.messages, a.size)), daemon=True).start()
        results = [json.loads(w.stdout.readline()) for w in ws]
        t1 = max(r["t"] for r in results)
        c1 = cpu_ticks(a.gateway_pid)
        delivered = sum(r["received"] for r in results)
        hz = os.sysconf("SC_CLK_TCK")
        print(json.dumps({"mode": "fanout", "tls": a.tls, "members": ready, "messages": a.messages, "size": a.size,
                          "delivered": delivered, "complete_members": sum(r["complete"] for r in results),
                          "seconds": round(t1 - t0, 2), "delivered_per_second": round(delivered / max(1e-9, t1 - t0)),
                          "gateway_cpu_seconds": round((c1 - c0) / hz, 2),
                          "gateway_cpu_us_per_delivery": round((c1 - c0) / hz * 1e6 / max(1, delivered), 2)}))
        return
    if a.mode == "handshakes":
        t0 = time.time()
        ws = [spawn(a, common + ["--kind", "handshakes", "--concurrency", str(a.concurrency), "--duration", str(a.duration)])
              for _ in range(a.procs)]
        results = [json.loads(w.stdout.readline()) for w in ws]
        secs = time.time() - t0
        done = sum(r["done"] for r in results)
        print(json.dumps({"mode": "handshakes", "tls": a.tls, "upgrades": done, "failed": sum(r["failed"] for r in results),
                          "seconds": round(secs, 2), "per_second": round(done / a.duration)}))
        return
    per = [a.connections // a.procs + (1 if i < a.connections % a.procs else 0) for i in range(a.procs)]
    assert max(per) <= 20000
    out = {"mode": "idle", "tls": a.tls, "connections": a.connections}
    out["rss_before_kib"] = rss_kib(a.gateway_pid)
    t0 = time.time()
    extra = (["--api", a.api] if a.api else [])
    ws = [spawn(a, common + ["--kind", "idle", "--connections", str(n)] + extra) for n in per]
    ready = [json.loads(w.stdout.readline()) for w in ws]
    out["opened"] = sum(r["ready"] for r in ready)
    out["failures"] = sum(r["failures"] for r in ready)
    out["open_seconds"] = round(time.time() - t0, 2)
    time.sleep(a.hold)
    out["rss_idle_kib"] = rss_kib(a.gateway_pid)
    out["per_connection_kib"] = round((out["rss_idle_kib"] - out["rss_before_kib"]) / max(1, out["opened"]), 2)
    if a.trim_with_gdb:
        # Diagnostic: how much of the growth is free heap that glibc keeps (fragmentation left by handshake
        # temporaries) rather than live per-connection state: malloc_trim(0) returns free pages to the kernel.
        subprocess.run(["gdb", "-p", str(a.gateway_pid), "-batch", "-ex", "call (int)malloc_trim(0)"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        out["rss_idle_after_malloc_trim_kib"] = rss_kib(a.gateway_pid)
        out["per_connection_after_trim_kib"] = round((out["rss_idle_after_malloc_trim_kib"] - out["rss_before_kib"]) / max(1, out["opened"]), 2)
    if a.api:
        for w in ws:
            w.stdin.write("burst\n")
            w.stdin.flush()
        body = json.dumps({"room": "tls-burst", "data": "x" * a.burst}).encode()
        req = urllib.request.Request(a.api.rstrip("/") + "/api/publish", data=body, method="POST",
                                     headers={"Authorization": "Bearer " + a.api_key, "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()
        out["burst_delivered"] = sum(json.loads(w.stdout.readline())["burst"] for w in ws)
        out["rss_right_after_burst_kib"] = rss_kib(a.gateway_pid)
        time.sleep(10)
        out["rss_10s_after_burst_kib"] = rss_kib(a.gateway_pid)
    for w in ws:
        w.stdin.write("close\n")
        w.stdin.flush()
    for w in ws:
        w.stdout.readline()
    time.sleep(10)
    out["rss_10s_after_close_kib"] = rss_kib(a.gateway_pid)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
