#!/usr/bin/env bash
# End to end over the bus: one gateway node on one Redis vs the same node on a three-master Redis Cluster,
# same bench. Three rooms, one per cluster shard (chosen by CLUSTER KEYSLOT), each driven by its own
# `switchboard-bench fanout` (MEMBERS members and one publisher with WINDOW publishes un-acked, for DURATION)
# at the same time; every publish goes through the bus (publish script, then the room's subscription) before
# the members get it. Prints publishes/s and deliveries/s summed over the three rooms, per mode.
#
# usage: Benchmarks/redis-cluster-gateway.sh
# env:   BIN=.build/release     where switchboard and switchboard-bench are (build them first:
#                               swift build -c release --product switchboard; … --product switchboard-bench)
#        BASE=24000             ports BASE (one Redis), BASE+1..3 (cluster; +10000 its bus), BASE+10 / +11 (gateway)
#        MEMBERS=100 WINDOW=32 DURATION=10s SIZE=64 THREADS=1
#        OUT=/tmp/switchboard-cluster-bench-<timestamp>
# Needs a quiet machine for throughput figures; every process started here is stopped by pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-.build/release}"
BASE="${BASE:-24000}"
MEMBERS="${MEMBERS:-100}"
WINDOW="${WINDOW:-32}"
DURATION="${DURATION:-10s}"
SIZE="${SIZE:-64}"
THREADS="${THREADS:-1}"
OUT="${OUT:-/tmp/switchboard-cluster-bench-$(date +%Y%m%d-%H%M%S)}"
GW_PORT=$((BASE + 10))
GW_ADMIN=$((BASE + 11))
mkdir -p "$OUT"
[[ -x "$BIN/switchboard" && -x "$BIN/switchboard-bench" ]] || { echo "binaries missing in $BIN" >&2; exit 1; }

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

redis() { # PORT [flags...]
  local port="$1"; shift
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no --loglevel warning \
    --protected-mode no --dir "$OUT" "$@" > "$OUT/redis-$port.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && return 0; sleep 0.05; done
  echo "redis-server on $port did not start" >&2; exit 1
}

echo "== one Redis on $BASE, a three-master cluster on $((BASE + 1))-$((BASE + 3)); results in $OUT"
redis "$BASE"
for i in 1 2 3; do redis $((BASE + i)) --cluster-enabled yes --cluster-config-file "nodes-$((BASE + i)).conf" --cluster-node-timeout 2000; done
timeout 30 redis-cli --cluster create 127.0.0.1:$((BASE + 1)) 127.0.0.1:$((BASE + 2)) 127.0.0.1:$((BASE + 3)) --cluster-yes > "$OUT/create.log" 2>&1
for _ in $(seq 1 100); do redis-cli -p $((BASE + 1)) CLUSTER INFO | grep -q cluster_state:ok && break; sleep 0.1; done

# One room per shard (redis-cli --cluster create splits the slots in thirds).
ROOMS=()
for third in 0 1 2; do
  for n in $(seq 0 200); do
    s=$(redis-cli -p $((BASE + 1)) CLUSTER KEYSLOT "bench$n")
    if (( s * 3 / 16384 == third )); then ROOMS+=("bench$n"); break; fi
  done
done
echo "== rooms ${ROOMS[*]} (one per shard)"

run() { # MODE gateway-flags...
  local mode="$1"; shift
  "$BIN/switchboard" --host 127.0.0.1 --port "$GW_PORT" --admin-port "$GW_ADMIN" --threads "$THREADS" \
    --max-frame-rate 0 --node-id "bench-$mode" --prefix "bench-$mode:" "$@" > "$OUT/gateway-$mode.log" 2>&1 &
  local gw=$!
  PIDS+=("$gw")
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$GW_ADMIN/ready" > /dev/null 2>&1 && break; sleep 0.1; done
  local benches=()
  for room in "${ROOMS[@]}"; do
    timeout --kill-after=10 300 "$BIN/switchboard-bench" fanout --port "$GW_PORT" --room "$room" --members "$MEMBERS" \
      --window "$WINDOW" --duration "$DURATION" --size "$SIZE" --json > "$OUT/$mode-$room.json" 2> "$OUT/$mode-$room.err" &
    benches+=($!)
  done
  for b in "${benches[@]}"; do wait "$b" || echo "   a bench failed: see $OUT/$mode-*.err" >&2; done
  kill -KILL "$gw" 2>/dev/null || true
  wait "$gw" 2>/dev/null || true
  python3 - "$mode" "$OUT" "${ROOMS[@]}" <<'PY'
import json, sys
mode, out, rooms = sys.argv[1], sys.argv[2], sys.argv[3:]
pub = dlv = lost = dup = 0.0
for r in rooms:
    try:
        j = json.loads(open(f"{out}/{mode}-{r}.json").read().strip().splitlines()[-1])
    except Exception as e:
        print(f"   {mode} {r}: no result ({e})"); continue
    pub += j.get("publishes_per_second", 0); dlv += j.get("delivered_per_second", 0)
    lost += j.get("lost", 0); dup += j.get("duplicates", 0)
print(f"   {mode:8} publishes/s {pub:10.0f}   deliveries/s {dlv:10.0f}   lost {lost:.0f}   duplicates {dup:.0f}")
PY
}

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
run redis --redis-url "redis://127.0.0.1:$BASE/0"
run cluster --redis-cluster "127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2)),127.0.0.1:$((BASE + 3))"
