#!/usr/bin/env bash
# The whole of Autobahn|Testsuite groups 12 and 13 (permessage-deflate, RFC 7692; 216 cases, messages up
# to 128 KiB x 1000) against the echo path, strict verdict. Too long for CI (scripts/test.sh runs the cases
# with messages up to 8 KiB); run it after changing compression.
#   usage: Benchmarks/autobahn-deflate.sh [OUTDIR]     (needs a debug or release build in .build)
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${SWITCHBOARD_SHARED:-$(pwd)/../shared}"
bin="${BIN:-.build/debug/switchboard}"
out="${1:-$(mktemp -d /tmp/autobahn-deflate.XXXXXX)}"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" --port "$port" --admin-port "$admin" --echo-path /echo --threads 2 --log-level warn 2>"$out/gateway.log" &
gw=$!
trap 'kill $gw 2>/dev/null || true' EXIT
sleep 1
start=$(date +%s)
AB_CASES='12.*,13.*' bash "$shared/tools/autobahn/run.sh" "ws://127.0.0.1:$port/echo" "$out" || true
AB_EXPECTED=216 python3 scripts/autobahn-verdict.py "$out/report/index.json"
echo "groups 12 and 13 in $(( $(date +%s) - start ))s; report: $out/report/index.html"
