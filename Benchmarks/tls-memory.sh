#!/usr/bin/env bash
# Idle memory per connection, plain ws:// against wss://, in one run with one bench (issue 15): a release
# gateway (--threads 1) is started twice on loopback, once plain and once with a throwaway ECDSA P-256
# certificate, and `switchboard-bench idle` opens N connections to /ws (waiting for each hello), spread over
# processes of at most --per-process connections (each under the 20,000-fd limit), holds them and reads the
# gateway's VmRSS before and after. Then Benchmarks/tls-ssl-memory.c (OpenSSL alone, same context settings as
# Sources/TLS/TLSContext.swift) prints what each idle server-side SSL keeps on the heap, by allocation site.
#   Benchmarks/tls-memory.sh                  10,000 connections, 4 bench processes
#   TLS_MEM_CONNECTIONS=2000 Benchmarks/tls-memory.sh
# Prints one line per mode and the difference; figures in docs/benchmarks.md. Needs the release products:
#   swift build -c release --product switchboard && swift build -c release --product switchboard-bench
set -euo pipefail
cd "$(dirname "$0")/.."
n=${TLS_MEM_CONNECTIONS:-10000}
per=${TLS_MEM_PER_PROCESS:-2500}
bin=.build/release
[[ -x $bin/switchboard && -x $bin/switchboard-bench ]] || { echo "build the release products first (see the header)"; exit 2; }
work=$(mktemp -d /tmp/switchboard-tls-memory.XXXXXX)
gw=""
trap '[[ -n $gw ]] && kill -KILL $gw 2>/dev/null; rm -rf "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
    -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

declare -A per_conn
for mode in ${TLS_MEM_MODES:-plain tls}; do
    port=$(free_port); admin=$(free_port)
    # A slow open (TLS handshakes on a busy machine) must not be cut by the handshake deadline or reaped by pings.
    flags=(--port "$port" --admin-port "$admin" --threads 1 --log-level warn --ping-interval 600s --handshake-timeout 60s
           --max-connections 200000)
    bench_flags=()
    if [[ $mode == tls ]]; then flags+=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem"); bench_flags+=(--tls); fi
    "$bin/switchboard" "${flags[@]}" 2> "$work/gateway-$mode.log" &
    gw=$!
    for _ in $(seq 100); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$admin/health', timeout=1)" 2>/dev/null && break; sleep 0.1; done
    "$bin/switchboard-bench" idle --port "$port" "${bench_flags[@]}" --connections "$n" --per-process "$per" --hold 10s \
        --connect-concurrency 64 --connect-timeout 60s --open-timeout 300s --gateway-pid "$gw" --json --quiet > "$work/bench-$mode.json"
    per_conn[$mode]=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['rss_per_connection_kib'])" "$work/bench-$mode.json")
    python3 - "$mode" "$work/bench-$mode.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
print("%-5s %6d open (%d failed), gateway RSS %d -> %d KiB, %.2f KiB per connection, end of hold %d KiB, opened in %.1f s" % (
    sys.argv[1], r["opened"], r["open_failed"], r["gateway_rss_before_kib"], r["gateway_rss_after_kib"],
    r["rss_per_connection_kib"], r.get("gateway_rss_end_of_hold_kib", -1), r["open_seconds"]))
for k, v in sorted(r.items()):
    if k.startswith("open_failure_"): print("      %s %s" % (k, v))
PY
    kill -KILL "$gw"; wait "$gw" 2>/dev/null || true; gw=""
done
[[ -n ${per_conn[plain]:-} && -n ${per_conn[tls]:-} ]] && python3 -c "import sys; print('TLS adds %.2f KiB per idle connection' % (float(sys.argv[2]) - float(sys.argv[1])))" "${per_conn[plain]}" "${per_conn[tls]}"

echo "== what one idle server-side SSL keeps (OpenSSL $(openssl version | cut -d' ' -f2), Benchmarks/tls-ssl-memory.c, 1000 connections)"
${CC:-cc} -O1 -o "$work/tls-ssl-memory" Benchmarks/tls-ssl-memory.c -lssl -lcrypto
"$work/tls-ssl-memory" 1000 "$work/cert.pem" "$work/key.pem" | head -16
