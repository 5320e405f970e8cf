#!/usr/bin/env bash
# Profiles the gateway under one bench scenario: `perf record -g` on the gateway pid (software cpu-clock
# event, which works where hardware counters do not), else valgrind callgrind on a short run.
#
# usage: Benchmarks/profile.sh SCENARIO [bench flags...]
#        e.g. Benchmarks/profile.sh handshakes --path /echo --duration 5s
#             Benchmarks/profile.sh fanout --members 1000 --window 32 --duration 5s
# env:   SCRATCH=.build  PORT=18080 ADMIN_PORT=19090  OUT=/tmp/switchboard-profile-<ts>  TOP=30
#        GATEWAY_FLAGS="..."  extra gateway flags   NICE=-19 (as in run.sh)   PROFILER=perf|callgrind (default: perf if it records)
# prints: the top frames by self time and by inclusive time, Swift names demangled.
set -euo pipefail
# NICE=-19: on a machine shared with other work, run everything in a new session (its own scheduler
# autogroup) whose nice level is NICE, so the pinned gateway and bench get their cores as if dedicated.
# (With autogroups, `nice` alone only ranks processes within one session.) Needs root.
if [[ -n "${NICE:-}" && -z "${SB_BOOSTED:-}" ]]; then
  exec setsid --wait bash -c 'echo "$0" > /proc/self/autogroup || echo "warning: cannot set autogroup nice" >&2
                              SB_BOOSTED=1 exec nice -n "$0" bash "$@"' "$NICE" "$0" "$@"
fi
cd "$(dirname "$0")/.."
[[ $# -ge 1 ]] || { sed -n '2,11p' "$0"; exit 2; }
SCENARIO="$1"; shift
SCRATCH="${SCRATCH:-.build}"
BIN="$SCRATCH/release"
PORT="${PORT:-18080}"
ADMIN_PORT="${ADMIN_PORT:-19090}"
OUT="${OUT:-/tmp/switchboard-profile-$(date +%Y%m%d-%H%M%S)}"
TOP="${TOP:-30}"
mkdir -p "$OUT"
[[ -x "$BIN/switchboard" && -x "$BIN/switchboard-bench" ]] || { echo "build first: swift build -c release --scratch-path $SCRATCH" >&2; exit 1; }

PROFILER="${PROFILER:-}"
if [[ -z "$PROFILER" ]]; then
  if perf record -e cpu-clock -o "$OUT/probe.data" -- true >/dev/null 2>&1; then PROFILER=perf; else PROFILER=callgrind; fi
fi
demangle() { if command -v swift >/dev/null; then swift demangle --simplified --compact 2>/dev/null || cat; else cat; fi; }

GW_PID=""
cleanup() {
  [[ -n "$GW_PID" ]] || return 0
  kill -TERM "$GW_PID" 2>/dev/null || true
  # Under callgrind the gateway must exit by itself (SIGKILL loses the profile): wait up to 60 s then.
  for _ in $(seq 1 "${1:-30}"); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$GW_PID" 2>/dev/null || true
  wait "$GW_PID" 2>/dev/null || true
}
trap 'cleanup 30' EXIT
GW=("$BIN/switchboard" --threads 1 --host 127.0.0.1 --port "$PORT" --admin-host 127.0.0.1 --admin-port "$ADMIN_PORT"
    --echo-path /echo --log-level warn ${GATEWAY_FLAGS:-})
if [[ "$PROFILER" == callgrind ]]; then
  taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" "${GW[@]}" > "$OUT/gateway.log" 2>&1 &
else
  taskset -c 0 "${GW[@]}" > "$OUT/gateway.log" 2>&1 &
fi
GW_PID=$!
for _ in $(seq 1 300); do timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null && break; sleep 0.1; done

PORTFLAGS=(--port "$PORT")
[[ "$SCENARIO" == crossnode ]] && PORTFLAGS=(--publish-port "$PORT" --member-port "$PORT")
if [[ "$PROFILER" == perf ]]; then
  # Record only while the bench runs its measured phase (the bench itself waits for opening first).
  taskset -c 1 "$BIN/switchboard-bench" "$SCENARIO" "${PORTFLAGS[@]}" --gateway-pid "$GW_PID" "$@" --quiet > "$OUT/bench.txt" 2>&1 &
  BENCH=$!
  timeout 120 perf record -e cpu-clock -F 4000 -g -p "$GW_PID" -o "$OUT/perf.data" -- sleep "${PERF_SECONDS:-6}" > /dev/null 2>&1 || true
  wait "$BENCH" || true
  perf report -i "$OUT/perf.data" --stdio --no-children --sort symbol -g none --percent-limit 0.5 2>/dev/null \
    | grep -E '^ +[0-9]' | head -"$TOP" | demangle > "$OUT/top-self.txt" || true
  perf report -i "$OUT/perf.data" --stdio --children --sort symbol -g none --percent-limit 2 2>/dev/null \
    | grep -E '^ +[0-9]' | head -"$TOP" | demangle > "$OUT/top-inclusive.txt" || true
else
  timeout 600 taskset -c 1 "$BIN/switchboard-bench" "$SCENARIO" "${PORTFLAGS[@]}" "$@" --quiet > "$OUT/bench.txt" 2>&1 || true
  cleanup 600; GW_PID=""
  callgrind_annotate "$OUT/callgrind.out" 2>/dev/null | head -$((TOP + 25)) | demangle > "$OUT/top-self.txt" || true
  callgrind_annotate --inclusive=yes "$OUT/callgrind.out" 2>/dev/null | head -$((TOP + 25)) | demangle > "$OUT/top-inclusive.txt" || true
fi
echo "== bench ($SCENARIO $*)"; sed '$d' "$OUT/bench.txt"
echo "== $PROFILER: top frames by self time ($OUT/top-self.txt)"; cut -c1-220 "$OUT/top-self.txt"
echo "== $PROFILER: top frames inclusive ($OUT/top-inclusive.txt)"; cut -c1-220 "$OUT/top-inclusive.txt"
