#!/usr/bin/env bash
# Builds and runs every check: the deployment files (scripts/validate-deploy.sh), unit and integration
# tests (swift test: real binary, real sockets, the ../shared/cases probes), then Autobahn|Testsuite
# groups 1-7 and 10 against the echo path over ws:// and over wss:// (TLS terminated by the node), requiring
# behaviour OK for every case (INFORMATIONAL only where the suite can only inform).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
export SWITCHBOARD_SHARED="${SWITCHBOARD_SHARED:-$root/../shared}"
start=$(date +%s)

echo "== deployment files (scripts/validate-deploy.sh)"
bash scripts/validate-deploy.sh

echo "== swift build"
# pipefail: a failed build fails the script; the filter only hides per-file progress lines.
swift build --build-tests 2>&1 | { grep -vE "^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Write|Linking|Applying|Merging)" || true; }

echo "== swift test"
set +e
swift test --skip-build > /tmp/switchboard-swift-test.log 2>&1
test_status=$?
set -e
grep -E "✘" /tmp/switchboard-swift-test.log | head -60 || true
grep -E "Test run with|Executed [0-9]+ tests" /tmp/switchboard-swift-test.log | tail -3 || true
if [[ $test_status -ne 0 ]]; then
  # A crash of the test process itself leaves no summary line: show how it ended.
  grep -nE "Fatal error|signal code|[Ee]rror: |Crash|crashed" /tmp/switchboard-swift-test.log | head -20 || true
  echo "--- last 60 lines of /tmp/switchboard-swift-test.log"; tail -60 /tmp/switchboard-swift-test.log | cut -c1-400
  echo "swift test failed (exit $test_status); full log: /tmp/switchboard-swift-test.log"; exit 1
fi

for target in protocol envelope socketio; do
  echo "== fuzz: $target under libFuzzer + AddressSanitizer (FUZZ_TARGET=$target Fuzz/run.sh)"
  log=/tmp/switchboard-fuzz-$target.log
  if FUZZ_TARGET=$target FUZZ_RUNS="${FUZZ_RUNS:-50000}" bash Fuzz/run.sh > "$log" 2>&1; then
    grep -E "^Done [0-9]+ runs" "$log" || true
  else
    tail -40 "$log"; echo "fuzzer found a crash or failed to build (log: $log)"; exit 1
  fi
done

# One Autobahn run against a fresh node: $1 = ws or wss; extra node flags follow.
autobahn_run() {
  local scheme="$1"; shift
  local port admin gw out
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  admin=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  .build/debug/switchboard --port "$port" --admin-port "$admin" --echo-path /echo --threads 2 --log-level warn "$@" 2>/tmp/switchboard-autobahn-gw-$scheme.log &
  gw=$!
  trap "kill $gw 2>/dev/null || true" EXIT
  python3 -c "import sys,time,urllib.request as u
for _ in range(100):
    try: u.urlopen(\"http://127.0.0.1:$admin/health\", timeout=1); sys.exit(0)
    except Exception: time.sleep(0.1)
sys.exit(1)"
  out=$(mktemp -d)
  AB_FAST=1 bash "$SWITCHBOARD_SHARED/tools/autobahn/run.sh" "$scheme://127.0.0.1:$port/echo" "$out" || true
  python3 scripts/autobahn-verdict.py "$out/report/index.json"
  kill -TERM $gw; wait $gw || { echo "gateway exited non-zero after Autobahn ($scheme)"; exit 1; }
  trap - EXIT
}

wstest="${AUTOBAHN_VENV:-$HOME/.cache/autobahn-venv}/bin/wstest"
if [[ -x "$wstest" && -x "$SWITCHBOARD_SHARED/tools/autobahn/run.sh" ]]; then
  echo "== Autobahn|Testsuite (groups 1-7, 10) against --echo-path over ws://"
  autobahn_run ws
  # Over wss:// with a throwaway CA (the fuzzing client, Twisted + pyOpenSSL in the venv, does not verify
  # the chain; the CA is there so the node serves a real CA-signed chain, as in production).
  echo "== Autobahn|Testsuite (groups 1-7, 10) against --echo-path over wss://"
  tlsdir=$(mktemp -d)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tlsdir/ca.key" -out "$tlsdir/ca.pem" \
    -days 2 -subj "/CN=Switchboard Autobahn CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tlsdir/server.key" -out "$tlsdir/server.csr" \
    -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$tlsdir/server.ext"
  openssl x509 -req -in "$tlsdir/server.csr" -CA "$tlsdir/ca.pem" -CAkey "$tlsdir/ca.key" -CAcreateserial -days 2 \
    -extfile "$tlsdir/server.ext" -out "$tlsdir/server.pem" 2>/dev/null
  autobahn_run wss --tls-cert "$tlsdir/server.pem" --tls-key "$tlsdir/server.key"
  rm -rf "$tlsdir"
else
  echo "Autobahn|Testsuite not installed (scripts/deps.sh test installs it)"; exit 1
fi
echo "== all checks passed in $(( $(date +%s) - start ))s"
