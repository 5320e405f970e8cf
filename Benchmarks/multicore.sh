#!/usr/bin/env bash
# One event loop against two on the same two cores (issue 17, item 4). This VM has two cores and the
# loaders need CPU too, so "loops on a core each with the loader on a third" cannot be measured here; what
# can: the gateway with --threads 1 and with --threads 2, the loader beside it, nothing pinned (the kernel
# places all three), and for reference the pinned layout compare.sh uses (gateway CPU 0, loader CPU 1).
#
# usage: Benchmarks/multicore.sh          env: SKIP_BUILD=1  PORT=18480  OUT=/tmp/switchboard-multicore-<ts>
# prints: per layout, the reconnect-storm rate (wsload, 5,000 clients, 256 in flight, hello) and the fan-out
#         of one room of 1,000 members (switchboard-bench fanout, window 32, 64-byte messages): deliveries/s,
#         p99, and the gateway's CPU (% of one core) and CPU per handshake / per delivery.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.build/release
PORT="${PORT:-18480}"
OUT="${OUT:-/tmp/switchboard-multicore-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  for p in switchboard switchboard-bench; do swift build -c release --product "$p" 2>&1 | tail -1; done
fi
CC="${CC:-$(command -v cc || command -v clang)}"
"$CC" -O2 -o "$OUT/wsload" Benchmarks/loader/wsload.c -lcrypto
GW=""
stop() { [[ -n "$GW" ]] && { kill -KILL "$GW" 2>/dev/null || true; wait "$GW" 2>/dev/null || true; }; GW=""; }
trap stop EXIT

# run LAYOUT THREADS GATEWAY_CPUS LOADER_CPUS
run() {
  local layout="$1" threads="$2" gcpus="$3" lcpus="$4"
  for what in storm fanout; do
    stop
    taskset -c "$gcpus" "$BIN/switchboard" --threads "$threads" --host 127.0.0.1 --port "$PORT" --admin-port $((PORT + 1)) \
      --log-level warn --max-frame-rate 0 > "$OUT/$layout-$what.log" 2>&1 &
    GW=$!
    for _ in $(seq 1 100); do timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null && break; sleep 0.1; done
    if [[ $what == storm ]]; then
      (ulimit -n 20000; taskset -c "$lcpus" "$OUT/wsload" --port "$PORT" --path /ws --until text --clients 5000 \
        --concurrency 256 --duration 5 --server-pid "$GW") > "$OUT/$layout-storm.json"
    else
      taskset -c "$lcpus" "$BIN/switchboard-bench" fanout --port "$PORT" --path /ws --expect-hello yes --members 1000 \
        --window 32 --duration 5s --size 64 --gateway-pid "$GW" --json --quiet | tail -1 > "$OUT/$layout-fanout.json"
    fi
  done
  stop
}

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), results in $OUT"
run pinned-1 1 0 1
run shared-1 1 0,1 0,1
run shared-2 2 0,1 0,1
python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
def load(name):
    p = os.path.join(out, name)
    try: return json.loads(open(p).read().strip().splitlines()[-1])
    except Exception: return {}
rows = [("pinned-1", "--threads 1 on CPU 0, loaders on CPU 1"), ("shared-1", "--threads 1, nothing pinned"),
        ("shared-2", "--threads 2, nothing pinned")]
print("| layout | storm handshakes/s | gateway CPU % | µs per handshake | fan-out deliveries/s | p99 ms | gateway CPU % | ns per delivery |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for key, label in rows:
    s, f = load(f"{key}-storm.json"), load(f"{key}-fanout.json")
    g = lambda d, k, fmt: (fmt.format(d[k]) if k in d else "n/a")
    print(f"| {label} | {g(s, 'handshakes_per_second', '{:,.0f}')} | {g(s, 'gateway_cpu_percent', '{:.0f}')} | "
          f"{g(s, 'gateway_cpu_us_per_handshake', '{:.1f}')} | {g(f, 'delivered_per_second', '{:,.0f}')} | "
          f"{g(f, 'latency_p99_ms', '{:.1f}')} | {g(f, 'gateway_cpu_percent', '{:.0f}')} | {g(f, 'gateway_cpu_ns_per_delivery', '{:.0f}')} |")
PY
