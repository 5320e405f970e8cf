#!/usr/bin/env bash
# End-to-end check of a deployed Switchboard, through its load balancer; usable against any environment.
#   scripts/smoke.sh URL [ADMIN_URL]
#     URL        the room endpoint clients use, e.g. ws://127.0.0.1:8080/ws or wss://gw.example/ws
#     ADMIN_URL  one node's admin port, e.g. http://127.0.0.1:9091 (optional: /ready, /metrics and, with
#                SMOKE_API_KEY, POST /api/publish are checked when given)
#   SMOKE_MIN_NODES   distinct nodes the load balancer must reach (hello.node) [2; 1 for a single node]
#   SMOKE_TOKEN       a JWT sent as `Authorization: Bearer` when the environment authenticates clients
#   SMOKE_API_KEY     the admin API key: also publish from the "backend" and expect the message over WebSocket
#   SMOKE_TIMEOUT     seconds for the whole check [30]
# Checks, in order: /ready is 200 and /metrics serves switchboard_* samples (with ADMIN_URL); connections
# through URL until hellos come from SMOKE_MIN_NODES different nodes; a member on one node joins a fresh
# room, a client on another node publishes to it: the publisher gets its ack, the member the message (the
# bus carried it across nodes); with SMOKE_API_KEY, a backend publish reaches the member too.
# Needs python3 and python3-websockets (Debian: apt-get install python3-websockets). Exit 0 when all pass.
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,16p' "$0"; exit 2; }
# Debian's python3-websockets lives in /usr/bin/python3's path; a python3 earlier on PATH may lack it.
py=python3
python3 -c 'import websockets' 2>/dev/null || { [[ -x /usr/bin/python3 ]] && py=/usr/bin/python3; }
exec "$py" - "$@" <<'PY'
import asyncio, json, os, secrets, sys, time, urllib.request, urllib.error

url = sys.argv[1]
admin = sys.argv[2].rstrip("/") if len(sys.argv) > 2 and sys.argv[2] else None
min_nodes = int(os.environ.get("SMOKE_MIN_NODES", "2"))
token = os.environ.get("SMOKE_TOKEN") or None
api_key = os.environ.get("SMOKE_API_KEY") or None
timeout = float(os.environ.get("SMOKE_TIMEOUT", "30"))
try:
    import websockets
except ImportError:
    sys.exit("smoke: python3-websockets is not installed (apt-get install python3-websockets)")

failures = 0
t0 = time.monotonic()
def report(ok, what):
    global failures
    print(f"  {'ok  ' if ok else 'FAIL'}  {what}  ({time.monotonic() - t0:.2f}s)", flush=True)
    failures += 0 if ok else 1
    return ok

def http(method, path, body=None, headers=None):
    req = urllib.request.Request(admin + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")

async def recv_until(ws, pred, seconds):
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError()
        frame = json.loads(await asyncio.wait_for(ws.recv(), left))
        if pred(frame):
            return frame

async def connect():
    headers = {"Authorization": f"Bearer {token}"} if token else None
    ws = await websockets.connect(url, extra_headers=headers, open_timeout=5, max_size=1 << 20)
    hello = await recv_until(ws, lambda f: f.get("op") == "hello", 5)
    return ws, hello

async def main():
    print(f"smoke: {url}" + (f" (admin {admin})" if admin else ""))
    if admin:
        status, _ = http("GET", "/ready")
        report(status == 200, f"GET /ready -> {status}")
        status, body = http("GET", "/metrics")
        samples = [l for l in body.splitlines() if l.startswith("switchboard_")]
        report(status == 200 and len(samples) > 0, f"GET /metrics -> {status}, {len(samples)} switchboard_* samples")

    # Through the load balancer until SMOKE_MIN_NODES distinct nodes answered (at most 8 per node wanted).
    by_node = {}
    extra = []
    for _ in range(max(8, 8 * min_nodes)):
        ws, hello = await connect()
        if hello["node"] in by_node:
            extra.append(ws)
        else:
            by_node[hello["node"]] = ws
        if len(by_node) >= min_nodes:
            break
    for ws in extra:
        await ws.close()
    nodes = list(by_node)
    if not report(len(nodes) >= min_nodes, f"hello from {len(nodes)} node(s) through the load balancer: {', '.join(nodes)}"):
        for ws in by_node.values():
            await ws.close()
        return
    member = by_node[nodes[0]]
    publisher = by_node[nodes[-1]]

    room = "smoke-" + secrets.token_hex(6)
    await member.send(json.dumps({"op": "join", "room": room, "id": "j"}))
    joined = await recv_until(member, lambda f: f.get("op") in ("joined", "error"), 5)
    report(joined.get("op") == "joined", f"join {room} on {nodes[0]} -> {joined.get('op')} {joined.get('code', '')}")

    nonce = secrets.token_hex(8)
    await publisher.send(json.dumps({"op": "publish", "room": room, "data": {"smoke": nonce}, "id": 1}))
    ack = await recv_until(publisher, lambda f: f.get("op") in ("ack", "error") and f.get("id") == 1, 5)
    report(ack.get("op") == "ack", f"publish on {nodes[-1]} -> {ack.get('op')} {ack.get('offset', ack.get('code', ''))}")
    try:
        msg = await recv_until(member, lambda f: f.get("op") == "message" and f.get("data") == {"smoke": nonce}, 10)
        report(True, f"message reached the member on {nodes[0]}" + (" across nodes" if nodes[0] != nodes[-1] else "") + f" at offset {msg['offset']}")
    except asyncio.TimeoutError:
        report(False, f"message published on {nodes[-1]} never reached the member on {nodes[0]}")

    if admin and api_key:
        nonce = secrets.token_hex(8)
        status, body = http("POST", "/api/publish", json.dumps({"room": room, "data": {"backend": nonce}}).encode(),
                            {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})
        if report(status == 202, f"POST /api/publish -> {status} {body.strip()[:80]}"):
            try:
                await recv_until(member, lambda f: f.get("op") == "message" and f.get("data") == {"backend": nonce}, 10)
                report(True, "backend publish reached the member")
            except asyncio.TimeoutError:
                report(False, "backend publish never reached the member")

    for ws in by_node.values():
        await ws.close()

try:
    asyncio.run(asyncio.wait_for(main(), timeout))
except asyncio.TimeoutError:
    report(False, f"timed out after {timeout:.0f}s")
except Exception as e:  # connection refused, handshake refused (401/403/503), bad frames
    report(False, f"{type(e).__name__}: {e}")
print(f"smoke: {'passed' if failures == 0 else f'{failures} check(s) failed'} in {time.monotonic() - t0:.2f}s")
sys.exit(1 if failures else 0)
PY
