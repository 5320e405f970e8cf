#!/usr/bin/env bash
# Syscalls and CPU per WebSocket handshake of the release gateway: figures that hold on a loaded machine
# (docs/benchmarks.md, "Handshake path").
#
# usage: Benchmarks/handshake-syscalls.sh [COUNT]        (default 1000 handshakes)
# env:   BIN=.build/release (switchboard + switchboard-bench)   PORT=18180 ADMIN_PORT=19180
#        WS_PATH=/ws (hello after the 101; /echo for the bare upgrade)   CONCURRENCY=16
#        UNTIL=upgrade|hello|joined (joined: each client joins room "hs" after the 101; the bench's --until)
#        GATEWAY_FLAGS="..."   extra gateway flags        CPU_RUN=5s (the strace-free CPU run; 0 to skip)
# prints: `strace -c -f` of the gateway over the handshakes (startup excluded: strace attaches to the
#         running gateway), each syscall's count per handshake, then the gateway's CPU µs per handshake
#         from /proc (utime+stime) over a run without strace.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-1000}"
BIN="${BIN:-.build/release}"
PORT="${PORT:-18180}"
ADMIN_PORT="${ADMIN_PORT:-19180}"
WS_PATH="${WS_PATH:-/ws}"
CONCURRENCY="${CONCURRENCY:-16}"
CPU_RUN="${CPU_RUN:-5s}"
UNTIL="${UNTIL:-upgrade}"
OUT="$(mktemp -d /tmp/sb-hs-syscalls.XXXXXX)"
GW=""; ST=""
cleanup() {
  [[ -n "$ST" ]] && kill -INT "$ST" 2>/dev/null || true
  [[ -n "$GW" ]] && { kill -KILL "$GW" 2>/dev/null || true; wait "$GW" 2>/dev/null || true; }
}
trap cleanup EXIT

start_gateway() {
  taskset -c 0 "$BIN/switchboard" --threads 1 --host 127.0.0.1 --port "$PORT" --admin-port "$ADMIN_PORT" \
    --echo-path /echo --log-level warn ${GATEWAY_FLAGS:-} > "$OUT/gateway.log" 2>&1 &
  GW=$!
  for _ in $(seq 1 100); do
    timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "gateway did not start: $(tail -3 "$OUT/gateway.log")" >&2; exit 1
}
accepted() { curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '/^switchboard_connections_accepted_total/ {print $2}'; }

start_gateway
sleep 0.3
before=$(accepted)
strace -c -f -p "$GW" -o "$OUT/strace.txt" 2> "$OUT/strace.err" &
ST=$!
sleep 1   # strace attaches to every thread
# --count: exactly COUNT upgrades, then stop (the bench's own handshakes scenario, on CPU 1).
taskset -c 1 "$BIN/switchboard-bench" handshakes --port "$PORT" --path "$WS_PATH" --count "$COUNT" \
  --until "$UNTIL" --room hs --concurrency "$CONCURRENCY" --duration 120s --json > "$OUT/bench.json"
sleep 0.3
kill -INT "$ST"; wait "$ST" 2>/dev/null || true; ST=""
after=$(accepted)
n=$(( after - before ))
echo "== $WS_PATH until $UNTIL: $n connections accepted under strace (bench: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("completed"), "completed,", d.get("failures"), "failures")' "$OUT/bench.json"))"
python3 - "$OUT/strace.txt" "$n" <<'PY'
import sys
rows, n = [], int(sys.argv[2])
for line in open(sys.argv[1]):
    f = line.split()
    # % time, seconds, usecs/call, calls, [errors], syscall
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
        calls = int(f[3]); errors = int(f[4]) if len(f) == 6 else 0
        rows.append((f[-1], calls, errors))
rows.sort(key=lambda r: -r[1])
total = sum(r[1] for r in rows)
print(f"   {'syscall':16} {'calls':>8} {'errors':>7} {'per handshake':>14}")
for name, calls, errors in rows:
    print(f"   {name:16} {calls:8} {errors:7} {calls / n:14.2f}")
print(f"   {'total':16} {total:8} {'':7} {total / n:14.2f}")
PY
kill -KILL "$GW" 2>/dev/null || true; wait "$GW" 2>/dev/null || true; GW=""

if [[ "$CPU_RUN" != 0 ]]; then
  start_gateway
  taskset -c 1 "$BIN/switchboard-bench" handshakes --port "$PORT" --path "$WS_PATH" --duration "$CPU_RUN" \
    --until "$UNTIL" --room hs --concurrency 64 --gateway-pid "$GW" --json > "$OUT/cpu.json"
  python3 - "$OUT/cpu.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
keys = ["handshakes_per_second", "failures", "gateway_cpu_percent", "bench_cpu_percent", "other_cpu_percent", "gateway_cpu_us_per_handshake"]
print("== without strace (64 in flight): " + "  ".join(f"{k}={d.get(k)}" for k in keys))
PY
fi
echo "== load average $(cut -d' ' -f1-3 /proc/loadavg); files in $OUT"
