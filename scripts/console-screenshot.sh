#!/usr/bin/env bash
# Regenerates docs/console.png: starts one node with the console (`--console yes --api-key …`), puts live
# traffic on it (members in three rooms, a chat publisher in "lobby"), logs in to /console with headless
# Chromium over the DevTools protocol (scripts/console-screenshot.mjs), waits for the charts and the tail,
# checks the page shows live data, and saves the screenshot. Everything on 127.0.0.1; everything it starts
# is stopped on exit.
#   scripts/console-screenshot.sh [OUT.png]      (default docs/console.png; needs a built .build/debug/switchboard,
#                                                 chromium, nodejs and node-ws: bash scripts/deps.sh test)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/console.png}"
bin="${SWITCHBOARD_BIN:-.build/debug/switchboard}"
chromium="${CHROMIUM:-chromium}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); admin=$(free_port); devtools=$(free_port)
key="console-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
work=$(mktemp -d /tmp/switchboard-console.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$bin" --port "$port" --admin-port "$admin" --threads 2 --node-id gw-demo-1 --console yes --api-key "$key" \
  --log-level warn 2>"$work/node.log" &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$admin/health" >/dev/null && break; sleep 0.1; done

# Live traffic: 16 members over three rooms joining one every second (the charts climb), and a chat in
# "lobby" every 400 ms (bounded: 90 s at most).
PYTHONPATH=Benchmarks python3 - "$port" <<'PY' >"$work/traffic.log" 2>&1 &
import json, random, sys, threading, time
from wsraw import WS
port = int(sys.argv[1])
def member(room):
    ws = WS(port); ws.recv(); ws.send(json.dumps({"op": "join", "room": room}))
    while True: ws.recv()
def members():
    for i in range(16):
        threading.Thread(target=member, args=(["lobby", "lobby", "ops", "support"][i % 4],), daemon=True).start()
        time.sleep(1.0)
threading.Thread(target=members, daemon=True).start()
pub = WS(port); pub.recv()
users = ["ada", "grace", "linus", "ken", "barbara"]
lines = ["deploy of gw-2 finished", "anyone seeing latency?", "p99 is back under 10 ms", "rolling restart in 5 min", "ok", "coffee?"]
end = time.time() + 90
n = 0
while time.time() < end:
    n += 1
    pub.send(json.dumps({"op": "publish", "room": "lobby", "data": {"user": random.choice(users), "text": random.choice(lines), "n": n}}))
    time.sleep(0.4)
PY
pids+=($!)

"$chromium" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir="$work/profile" \
  --no-first-run --no-default-browser-check --disable-extensions --disable-background-networking \
  --disable-component-update --disable-sync --disable-default-apps --no-pings \
  --host-resolver-rules="MAP * ~NOTFOUND , EXCLUDE 127.0.0.1" --hide-scrollbars \
  --remote-debugging-address=127.0.0.1 --remote-debugging-port="$devtools" about:blank 2>"$work/chromium.log" &
pids+=($!)

node scripts/console-screenshot.mjs "$devtools" "http://127.0.0.1:$admin" "$key" lobby "$out" "${CONSOLE_WAIT_MS:-20000}"
echo "wrote $out"
