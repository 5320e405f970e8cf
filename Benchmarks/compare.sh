#!/usr/bin/env bash
# Switchboard side by side with nginx + nchan, Node's `ws` and python-socketio (issue 17), every server
# driven by the same load generators on loopback, server pinned to CPU 0 and loader to CPU 1: connection
# setup by `wsload` (Benchmarks/loader/wsload.c, C, built here), fan-out, idle memory and cross-node latency
# by `switchboard-bench`. Prints one table with each figure and Switchboard's ratio to nchan;
# docs/benchmarks.md quotes it.
#
# Connection setup is measured as a reconnect storm: 5,000 clients arrive, 256 in flight, and stay
# connected; the clock stops at the last one, then they are closed untimed and the round repeats. A second
# row resets each connection right after its 101 (churn: every handshake also pays for a close on both sides).
#
# usage: Benchmarks/compare.sh [--quick]
#   --quick: one turn of connection setup, shorter runs and fewer idle connections (a few minutes in all);
#            the full mode takes three turns (medians) and searches the fan-out maximum
# env:   SKIP_BUILD=1 (use .build/release)   SKIP_DEPS=1 (install nothing)   OUT=/tmp/switchboard-compare-<ts>
#        PORT_BASE=18280 (servers on PORT_BASE..+9, admin ports +1000; Redis on PORT_BASE+20)
#        SERVERS="sb sbredis nchan node sio"   NICE=-19 (as in run.sh; needs root)   REPEATS (turns of connection setup)
#
# What each server runs (all on 127.0.0.1, one process / worker on CPU 0):
#   sb        switchboard --threads 1 (in-process bus)
#   sbredis   two switchboard nodes on one redis-server (all on CPU 0); handshakes and fan-out use node a
#   nchan     nginx 1.22 + libnginx-mod-nchan (Debian), worker_processes 1: /sub/<channel> websocket
#             subscriber (joining is the upgrade: the channel is in the URL; a subscriber gets only messages
#             published after it came, like a join without `since`), /pub/<channel> publisher. The bench
#             speaks it with --protocol nchan: members read the bare published data, the publisher POSTs it
#             pipelined on one keep-alive connection (keepalive_requests raised so nginx never closes it).
#             Cross-node: two such nginx (one worker each, ports +6 and +7) on one redis-server through an
#             upstream with nchan_redis_server and `nchan_redis_pass` (nchan 1.3's style; Debian 12 ships
#             1.3.6), publishing into the first while the members sit on the second
#   node      Benchmarks/compare/ws-room-server.js: Node `ws` (Debian node-ws) speaking the subset of the room
#             protocol the bench uses (hello, join/joined, publish/ack/message)
#   sio       Benchmarks/compare/socketio-server.py: python-socketio 5 on aiohttp (PyPI, in a venv),
#             websocket transport; `?room=R` joins R on connect and answers the event "joined"
# Figures the bench cannot take from a server (it has no Socket.IO event client for fan-out) are printed as
# "n/a"; Node and python-socketio run no cross-node pair (they have no cluster bus).
set -euo pipefail
if [[ -n "${NICE:-}" && -z "${SB_BOOSTED:-}" ]]; then
  exec setsid --wait bash -c 'echo "$0" > /proc/self/autogroup || echo "warning: cannot set autogroup nice" >&2
                              SB_BOOSTED=1 exec nice -n "$0" bash "$@"' "$NICE" "$0" "$@"
fi
cd "$(dirname "$0")/.."
REPO="$(pwd)"
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
BIN="$REPO/.build/release"
OUT="${OUT:-/tmp/switchboard-compare-$(date +%Y%m%d-%H%M%S)}"
PORT_BASE="${PORT_BASE:-18280}"
SERVERS=(${SERVERS:-sb sbredis nchan node sio})
VENV="${COMPARE_VENV:-$HOME/.cache/switchboard-compare-venv}"
if [[ $QUICK == 1 ]]; then
  REPEATS="${REPEATS:-1}"; HS_SECONDS=2; IDLE=2000; HOLD=2s; FAN_DURATION=4s; CROSS_DURATION=4s
else
  REPEATS="${REPEATS:-3}"; HS_SECONDS=5; IDLE=10000; HOLD=5s; FAN_DURATION=10s; CROSS_DURATION=10s
fi
mkdir -p "$OUT"
SUMMARY="$OUT/summary.jsonl"
: > "$SUMMARY"

# --- dependencies (Debian packages and one venv; nothing when already there) ---
if [[ "${SKIP_DEPS:-0}" != 1 ]]; then
  missing=()
  for p in nginx libnginx-mod-nchan node-ws nodejs redis-server python3-venv libssl-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    echo "== apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  fi
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/python" -c 'import socketio, aiohttp' 2>/dev/null ||
    "$VENV/bin/pip" install --quiet --disable-pip-version-check python-socketio==5.11.4 aiohttp==3.10.10
fi
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  echo "== build (release)"
  for p in switchboard switchboard-bench; do swift build -c release --product "$p" 2>&1 | tail -1; done
fi
WSLOAD="$OUT/wsload"
# The system C compiler, else the Swift toolchain's clang.
CC="${CC:-$(command -v cc || command -v clang)}"
"$CC" -O2 -o "$WSLOAD" "$REPO/Benchmarks/loader/wsload.c" -lcrypto

PIDS=()      # processes to stop, in start order
SRV_PID=""   # the process whose CPU and RSS are measured (nginx: its one worker)
stop_all() {
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=(); SRV_PID=""
}
trap stop_all EXIT

wait_port() {
  for _ in $(seq 1 100); do
    timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1 (logs in $OUT)" >&2; return 1
}

REDIS_PORT=$((PORT_BASE + 20))
sb_node() {   # sb_node NAME PORT [flags...]
  local name="$1" port="$2"; shift 2
  taskset -c 0 "$BIN/switchboard" --threads 1 --host 127.0.0.1 --port "$port" --admin-port $((port + 1000)) \
    --log-level warn --max-frame-rate 0 "$@" > "$OUT/$name.log" 2>&1 &
  PIDS+=($!)
  wait_port "$port"
}

# nchan_node NAME PORT [REDIS_PORT]: nginx + nchan with one worker on CPU 0 (config in $OUT/NAME); with a Redis
# port, channels live in that redis-server (nchan_redis_pass to an upstream of nchan_redis_server), so nodes on
# the same Redis share them.
nchan_node() {
  local name="$1" port="$2" redis="${3:-}" dir="$OUT/$1" upstream="" pass=""
  if [[ -n "$redis" ]]; then
    upstream="upstream bus { nchan_redis_server redis://127.0.0.1:$redis; }"
    pass="nchan_redis_pass bus;"
  fi
  mkdir -p "$dir"
  cat > "$dir/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
worker_processes 1;
worker_rlimit_nofile 70000;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 60000; }
http {
  access_log off;
  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
  uwsgi_temp_path $dir; scgi_temp_path $dir;
  $upstream
  server {
    listen 127.0.0.1:$port backlog=4096;
    # The bench pipelines every publish on one keep-alive connection; nginx 1.22 closes one after 1,000 requests.
    keepalive_requests 1000000000;
    location ~ ^/sub/(\w+)\$ { nchan_subscriber websocket; nchan_channel_id \$1; nchan_subscriber_first_message newest; $pass }
    location ~ ^/pub/(\w+)\$ { nchan_publisher; nchan_channel_id \$1; $pass }
  }
}
EOF
  taskset -c 0 nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" > "$OUT/$name.log" 2>&1 &
  PIDS+=($!); wait_port "$port"
  # nchan connects to Redis after it listens; publishes and subscribes fail (503) until then.
  if [[ -n "$redis" ]]; then
    for _ in $(seq 1 100); do curl -sf -X POST --data-binary ready "http://127.0.0.1:$port/pub/ready" >/dev/null && break; sleep 0.1; done
  fi
}

# How every scenario talks to a Switchboard node (in process or on Redis): the room protocol on /ws.
sb_scenarios() {
  HS_PATH=/ws; IDLE_ARGS=(--path /ws --expect-hello yes)
  HS_ARGS=(--path /ws --until text); JOIN_ARGS=(--path /ws --until match)
  URLJOIN_ARGS=(--path "/ws?join=hs" --until match --send "")
  FAN_ARGS=(--path /ws --expect-hello yes)
}

# start SERVER: starts it; sets PORT (PORT_B: the second node of a cross-node pair), SRV_PID, the paths the
# scenarios use and FAN_ARGS (how fan-out members connect).
start() {
  stop_all
  case "$1" in
    sb)
      PORT=$PORT_BASE; sb_node sb "$PORT"; SRV_PID=${PIDS[-1]}
      sb_scenarios ;;
    sbredis)
      taskset -c 0 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no > "$OUT/redis.log" 2>&1 &
      PIDS+=($!); wait_port "$REDIS_PORT"
      PORT=$((PORT_BASE + 1))
      sb_node sbredis-a "$PORT" --redis-url "redis://127.0.0.1:$REDIS_PORT/0" --node-id a; SRV_PID=${PIDS[-1]}
      sb_node sbredis-b $((PORT_BASE + 2)) --redis-url "redis://127.0.0.1:$REDIS_PORT/0" --node-id b
      for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$((PORT + 1000))/ready" >/dev/null && break; sleep 0.1; done
      PORT_B=$((PORT_BASE + 2))
      sb_scenarios ;;
    nchan)
      PORT=$((PORT_BASE + 3))
      nchan_node nginx "$PORT"; SRV_PID=$(pgrep -P "${PIDS[-1]}" | head -1)
      # Subscribing is the upgrade (the channel is in the URL), and nchan sends nothing after the 101.
      HS_PATH=/sub/hs; IDLE_ARGS=(--path /sub/idle --expect-hello no)
      HS_ARGS=(--path /sub/hs --until upgrade); JOIN_ARGS=("${HS_ARGS[@]}"); URLJOIN_ARGS=("${HS_ARGS[@]}")
      FAN_ARGS=(--protocol nchan --path /sub/bench --expect-hello no) ;;
    nchancross)
      taskset -c 0 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no > "$OUT/redis.log" 2>&1 &
      PIDS+=($!); wait_port "$REDIS_PORT"
      PORT=$((PORT_BASE + 6)); PORT_B=$((PORT_BASE + 7))
      nchan_node nginx-a "$PORT" "$REDIS_PORT"; SRV_PID=$(pgrep -P "${PIDS[-1]}" | head -1)
      nchan_node nginx-b "$PORT_B" "$REDIS_PORT"
      FAN_ARGS=(--protocol nchan --path /sub/bench --expect-hello no) ;;
    node)
      PORT=$((PORT_BASE + 4))
      NODE_PATH=/usr/share/nodejs taskset -c 0 node "$REPO/Benchmarks/compare/ws-room-server.js" "$PORT" > "$OUT/node.log" 2>&1 &
      PIDS+=($!); SRV_PID=$!; wait_port "$PORT"
      HS_PATH=/; IDLE_ARGS=(--path / --expect-hello yes)
      HS_ARGS=(--path / --until text); JOIN_ARGS=(--path / --until match); URLJOIN_ARGS=()
      FAN_ARGS=(--path / --expect-hello yes) ;;
    sio)
      PORT=$((PORT_BASE + 5))
      taskset -c 0 "$VENV/bin/python" "$REPO/Benchmarks/compare/socketio-server.py" "$PORT" > "$OUT/sio.log" 2>&1 &
      PIDS+=($!); SRV_PID=$!; wait_port "$PORT"
      HS_PATH="/socket.io/?EIO=4&transport=websocket"
      IDLE_ARGS=(--path "/socket.io/?EIO=4&transport=websocket" --expect-hello no)
      # The Engine.IO open packet is the first text; the join is the namespace connect `40` (?room=hs).
      HS_ARGS=(--path "$HS_PATH" --until text)
      JOIN_ARGS=(--path "/socket.io/?EIO=4&transport=websocket&room=hs" --until match --send 40); URLJOIN_ARGS=() ;;
  esac
  echo "   $1: port $PORT, measured pid $SRV_PID"
}

# record SERVER RUN RC: a loader's exit status RC; on success its JSON line, with "server" and "run", joins
# the summary.
record() {
  local server="$1" run="$2" rc="$3"
  if [[ $rc == 0 ]]; then
    tail -1 "$OUT/$server-$run.json" | sed "s/^{/{\"server\":\"$server\",\"run\":\"$run\",/" >> "$SUMMARY"
  else
    echo "   $server $run failed (rc $rc): $(tail -1 "$OUT/$server-$run.json" "$OUT/$server-$run.err")" >&2
  fi
}

# bench SERVER RUN LIMIT args...: switchboard-bench on CPU 1.
bench() {
  local server="$1" run="$2" limit="$3" rc=0; shift 3
  timeout --kill-after=10 "$limit" taskset -c 1 "$BIN/switchboard-bench" "$@" --gateway-pid "$SRV_PID" --json --quiet \
    > "$OUT/$server-$run.json" 2> "$OUT/$server-$run.err" || rc=$?
  record "$server" "$run" "$rc"
}

# load SERVER RUN args...: wsload on CPU 1 (it prints the same JSON keys as the bench).
load() {
  local server="$1" run="$2" rc=0; shift 2
  (ulimit -n 20000; timeout --kill-after=10 300 taskset -c 1 "$WSLOAD" --port "$PORT" --concurrency 256 \
    --server-pid "$SRV_PID" "$@" > "$OUT/$server-$run.json" 2> "$OUT/$server-$run.err") || rc=$?
  record "$server" "$run" "$rc"
}

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)$([[ $QUICK == 1 ]] && echo ', --quick'), results in $OUT"
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
# Connection setup first, the servers taking turns REPEATS times: on a shared machine the CPU available
# drifts, and turns spread the drift over every server; the table shows each figure's median.
for ((k = 1; k <= REPEATS; k++)); do
  for s in "${SERVERS[@]}"; do
    echo "== $s: connection setup, turn $k of $REPEATS"
    start "$s"
    load "$s" "handshakes#$k" "${HS_ARGS[@]}" --clients 5000 --duration "$HS_SECONDS"
    load "$s" "join#$k" "${JOIN_ARGS[@]}" --clients 5000 --duration "$HS_SECONDS"
    [[ ${#URLJOIN_ARGS[@]} -gt 0 ]] && load "$s" "urljoin#$k" "${URLJOIN_ARGS[@]}" --clients 5000 --duration "$HS_SECONDS"
    load "$s" "churn#$k" "${HS_ARGS[@]}" --duration "$HS_SECONDS"
  done
done
for s in "${SERVERS[@]}"; do
  echo "== $s"
  start "$s"   # a fresh process: RSS from a clean start
  bench "$s" idle 300 idle --port "$PORT" "${IDLE_ARGS[@]}" --connections "$IDLE" --hold "$HOLD"
  case "$s" in
    sb|sbredis|nchan|node)
      start "$s"
      bench "$s" fanout 300 fanout --port "$PORT" "${FAN_ARGS[@]}" --members 1000 --window 32 \
        --duration "$FAN_DURATION" --size 64
      if [[ $QUICK == 0 ]]; then
        # The highest publish rate to 1,000 members that holds p99 <= 100 ms without loss (a search of 3 s steps).
        start "$s"
        bench "$s" fanmax 900 crossnode --publish-port "$PORT" --member-port "$PORT" "${FAN_ARGS[@]}" \
          --members 1000 --rate max --max-p99 100ms --size 64
      fi
      start "$s"
      bench "$s" p99at80k 300 fanout --port "$PORT" "${FAN_ARGS[@]}" --members 1000 --rate 80 \
        --duration "$FAN_DURATION" --size 64 ;;
  esac
  # Cross-node: publish into node a, members on node b of a pair sharing one Redis.
  cross=""
  [[ "$s" == sbredis ]] && cross=sbredis
  [[ "$s" == nchan ]] && cross=nchancross
  if [[ -n "$cross" ]]; then
    start "$cross"
    bench "$s" crossnode 300 crossnode --publish-port "$PORT" --member-port "$PORT_B" "${FAN_ARGS[@]}" --members 10 --rate 1000 \
      --duration "$CROSS_DURATION" --size 64
  fi
done
stop_all
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== table (load average at start $LOAD_START, at end $LOAD_END; JSON lines in $SUMMARY)"
python3 - "$SUMMARY" <<'PY'
import json, sys
import statistics
runs, turns = {}, {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["run"] == "fanmax" and "max_clean_rate" in r:
        r["max_clean_deliveries"] = r["max_clean_rate"] * r.get("members", 1000)
    name, _, turn = r["run"].partition("#")
    turns.setdefault((r["server"], name), []).append(r)
# A figure taken in several turns is the median of its turns (each key on its own).
for key, rs in turns.items():
    merged = {}
    for k in rs[0]:
        vals = [x[k] for x in rs if isinstance(x.get(k), (int, float)) and not isinstance(x.get(k), bool)]
        merged[k] = statistics.median(vals) if len(vals) == len(rs) else rs[-1][k]
    merged["turns"] = len(rs)
    runs[key] = merged
servers = [("sb", "Switchboard"), ("sbredis", "Switchboard (Redis)"), ("nchan", "nchan"), ("node", "Node ws"), ("sio", "python-socketio")]
def get(server, run, key):
    r = runs.get((server, run))
    return None if r is None or key not in r else r[key]
def fmt(v, unit):
    if v is None: return "n/a"
    if unit == "/s": return f"{v:,.0f}"
    if unit == "KiB": return f"{v:.2f}"
    if unit == "ms": return f"{v:.2f}"
    if unit == "us": return f"{v:.1f}"
    if unit == "%": return f"{v:.0f}"
    return f"{v}"
rows = [
    ("handshakes/s: upgrade + first message (Switchboard's hello), 5,000 clients, 256 in flight", "handshakes", "handshakes_per_second", "/s", True),
    ("handshake + join/s: join frame after the 101 (nchan: the upgrade)", "join", "handshakes_per_second", "/s", True),
    ("handshake + join/s: room in the upgrade URL (Switchboard /ws?join=)", "urljoin", "handshakes_per_second", "/s", True),
    ("handshakes/s, churn: each connection reset after its first message", "churn", "handshakes_per_second", "/s", True),
    ("server CPU per handshake, µs", "handshakes", "gateway_cpu_us_per_handshake", "us", False),
    ("server CPU per handshake + join frame, µs", "join", "gateway_cpu_us_per_handshake", "us", False),
    ("server CPU per handshake + URL join, µs", "urljoin", "gateway_cpu_us_per_handshake", "us", False),
    ("loader CPU per handshake, µs (wsload)", "handshakes", "bench_cpu_us_per_handshake", "us", False),
    ("fan-out, 1,000 members, window 32: deliveries/s", "fanout", "delivered_per_second", "/s", True),
    ("  its latency p99 (ms; the max counts when < 100)", "fanout", "latency_p99_ms", "ms", False),
    ("fan-out max with p99 < 100 ms, deliveries/s (full mode)", "fanmax", "max_clean_deliveries", "/s", True),
    ("p99 at 80k deliveries/s (80 publishes/s x 1,000), ms", "p99at80k", "latency_p99_ms", "ms", False),
    ("idle RSS per connection, KiB", "idle", "rss_per_connection_kib", "KiB", False),
    ("cross-node p99 at 1,000 publishes/s, 10 members, ms", "crossnode", "latency_p99_ms", "ms", False),
]
head = "| figure | " + " | ".join(n for _, n in servers) + " | Switchboard / nchan | Switchboard (Redis) / nchan |"
print(head)
print("|" + " --- |" * (len(servers) + 3))
def ratio(a, b, higher):
    if a is None or not b: return "n/a"
    return f"{a / b:.2f}x" + ("" if higher else " (lower is better)")
for label, run, key, unit, higher in rows:
    vals = [get(s, run, key) for s, _ in servers]
    sb, sbredis, nchan = vals[0], vals[1], vals[2]
    if run == "crossnode": sb = None  # one in-process node has no other node
    print(f"| {label} | " + " | ".join(fmt(v, unit) for v in vals) + f" | {ratio(sb, nchan, higher)} | {ratio(sbredis, nchan, higher)} |")
print()
print("| loader / server CPU, % of one core (handshakes, join, URL join) | " + " | ".join(
    ", ".join(f"{fmt(get(s, r, 'bench_cpu_percent'), '%')}/{fmt(get(s, r, 'gateway_cpu_percent'), '%')}" for r in ("handshakes", "join", "urljoin"))
    for s, _ in servers) + " |")
print("| other load on the machine, % of one core (handshakes) | " + " | ".join(fmt(get(s, 'handshakes', 'other_cpu_percent'), '%') for s, _ in servers) + " |")
PY
