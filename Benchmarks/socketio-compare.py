#!/usr/bin/env python3
# Issue 13, "Done when": handshakes/s and idle RSS per connection for Socket.IO clients next to the native
# room protocol on the same switchboard node, and the python-socketio server (the seed architecture) measured
# the same way. One client bench (asyncio, raw sockets, this file) for all three:
#   native     connect, upgrade on /ws, read the 101 and `hello`, reset
#   socketio   connect, upgrade on /socket.io/?EIO=4&transport=websocket, read the 101 and the open packet,
#              send CONNECT `40`, read its answer `40{"sid":…}`, reset
# Handshakes/s: CONCURRENCY slots in two client processes for SECONDS (the Python client is often the
# limit: the server's CPU time per handshake, from /proc/PID/stat, is the figure that does not depend on
# it). Idle RSS: IDLE connections opened
# (socketio: `/` connected) and held; the server's RSS (/proc/PID/status VmRSS) before and after, divided
# by IDLE.
#
# Usage: socketio-compare.py SWITCHBOARD_BIN [PYTHON_WITH_SIMPLE_WEBSOCKET] [SECONDS] [CONCURRENCY] [IDLE]
# The python-socketio server runs in threading mode on werkzeug's threaded server with simple-websocket
# (Debian python3-socketio 5.7.2, python3-werkzeug, python3-wsproto; simple-websocket from PyPI:
#   python3 -m venv --system-site-packages V && V/bin/pip install simple-websocket==1.0.0
# then pass V/bin/python). Without it only switchboard is measured. Everything on 127.0.0.1; the node runs
# with --threads 1 (the Python server is one process under the GIL). On a shared 2-core machine the
# client and the server compete for the CPUs: compare figures of one run, not across runs.
import asyncio, json, multiprocessing, os, socket, struct, subprocess, sys, time, urllib.request

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1]) * 1024
    return 0

def cpu_seconds(pid):
    """User + system CPU time of the process (/proc/PID/stat)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def measure(port, kind, pid, seconds, concurrency, idle):
    """Handshakes/s, the server's CPU time per handshake (client-independent), idle RSS per connection."""
    cpu0 = cpu_seconds(pid)
    rate, failed = handshakes_per_second(port, kind, seconds, concurrency)
    cpu = cpu_seconds(pid) - cpu0
    per, total = asyncio.run(hold_idle(port, kind, idle, pid))
    return {"handshakes_per_s": round(rate), "failed": failed, "server_cpu_us_per_handshake": round(cpu * 1e6 / max(1, rate * seconds)),
            "idle_rss_bytes_per_conn": round(per), "rss_after_bytes": total}

def masked_text(text):
    data = text.encode(); key = os.urandom(4)
    return bytes([0x81, 0x80 | len(data)]) + key + bytes(b ^ key[i % 4] for i, b in enumerate(data))

UPGRADE = ("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")

async def read_frame(reader, buf):
    """One server frame's text (unmasked, small); `buf` holds bytes already read past the head."""
    while True:
        if len(buf) >= 2:
            n, off = buf[1] & 0x7F, 2
            if n == 126 and len(buf) >= 4: n, off = struct.unpack(">H", bytes(buf[2:4]))[0], 4
            if n < 127 and len(buf) >= off + n:
                text = bytes(buf[off:off + n]); del buf[:off + n]
                if text == b"2":           # an Engine.IO ping: not what we wait for
                    continue
                return text
        chunk = await reader.read(65536)
        if not chunk: raise ConnectionError("closed")
        buf.extend(chunk)

async def handshake(port, kind):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        path = "/ws" if kind == "native" else "/socket.io/?EIO=4&transport=websocket"
        writer.write(UPGRADE.format(path=path).encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n")[0]: raise ConnectionError(head[:40])
        buf = bytearray()
        first = await read_frame(reader, buf)            # hello, or the open packet
        if kind == "socketio":
            if not first.startswith(b"0{"): raise ConnectionError(first[:40])
            writer.write(masked_text("40"))
            answer = await read_frame(reader, buf)
            if not answer.startswith(b"40"): raise ConnectionError(answer[:40])
        return reader, writer
    except BaseException:
        writer.transport.abort(); raise

def reset(writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()

async def hammer(port, kind, seconds, concurrency):
    done = failed = 0
    end = time.monotonic() + seconds
    async def slot():
        nonlocal done, failed
        while time.monotonic() < end:
            try:
                _, w = await asyncio.wait_for(handshake(port, kind), 5)
                reset(w); done += 1
            except Exception:
                failed += 1
    await asyncio.gather(*(slot() for _ in range(concurrency)))
    return done, failed

def client_process(args):
    port, kind, seconds, concurrency = args
    return asyncio.run(hammer(port, kind, seconds, concurrency))

def handshakes_per_second(port, kind, seconds, concurrency, clients=2):
    with multiprocessing.Pool(clients) as pool:
        results = pool.map(client_process, [(port, kind, seconds, concurrency // clients)] * clients)
    return sum(r[0] for r in results) / seconds, sum(r[1] for r in results)

async def hold_idle(port, kind, n, pid):
    before = rss(pid)
    held = []
    for i in range(0, n, 100):
        held += await asyncio.gather(*(handshake(port, kind) for _ in range(min(100, n - i))))
    await asyncio.sleep(2)
    after = rss(pid)
    for _, w in held: reset(w)
    return (after - before) / n, after

def wait_port(port, proc, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        try: socket.create_connection(("127.0.0.1", port), 0.5).close(); return
        except OSError:
            if proc.poll() is not None: raise SystemExit("server exited")
            time.sleep(0.1)
    raise SystemExit("server did not listen")

PY_SERVER = r'''
import socketio, sys, logging
from werkzeug.serving import run_simple
logging.getLogger("werkzeug").setLevel(logging.ERROR)
sio = socketio.Server(async_mode="threading", ping_interval=60, ping_timeout=20)
run_simple("127.0.0.1", int(sys.argv[1]), socketio.WSGIApp(sio), threaded=True)
'''

def main():
    binary = sys.argv[1]
    py = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else None
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 5
    concurrency = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    idle = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
    out = {"seconds": seconds, "concurrency": concurrency, "idle": idle, "loadavg": open("/proc/loadavg").read().split()[:3]}
    port, admin = free_port(), free_port()
    sb = subprocess.Popen([binary, "--port", str(port), "--admin-port", str(admin), "--threads", "1", "--log-level", "error",
                           "--socketio-path", "/socket.io/", "--socketio-ping-interval", "60s", "--max-handshakes-per-ip", "0"],
                          stderr=subprocess.DEVNULL)
    try:
        wait_port(port, sb)
        for kind in ("native", "socketio"):
            out["switchboard_" + kind] = measure(port, kind, sb.pid, seconds, concurrency, idle)
    finally:
        sb.terminate(); sb.wait()
    if py:
        pport = free_port()
        ps = subprocess.Popen([py, "-c", PY_SERVER, str(pport)], stderr=subprocess.DEVNULL)
        try:
            wait_port(pport, ps)
            out["python_socketio_server"] = measure(pport, "socketio", ps.pid, seconds, concurrency, idle)
        finally:
            ps.kill(); ps.wait()
    print(json.dumps(out, indent=1))

if __name__ == "__main__":
    main()
