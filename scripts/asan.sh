#!/usr/bin/env bash
# AddressSanitizer run of the gateway: builds `switchboard` with --sanitize=address into its own scratch
# path (plus --sanitize=undefined where the compiler accepts it: swiftc 6.3 refuses -sanitize=undefined for
# x86_64 Linux, and the package has no C sources for UBSan to instrument — its C parts are Debian's
# prebuilt OpenSSL and hiredis behind module maps; Swift's own overflow, bounds and unwrap checks trap in
# every build of ours, which is what UBSan would add for C), starts it on loopback with the echo
# path, and drives it with the byte-level shared cases (../shared/cases/probe.py against /echo, and /ws
# --strict) and a short Autobahn|Testsuite run (AB_CASES, default groups 1-7 and 10 minus the long 9.*).
# Any ASan/UBSan report in the gateway's log fails the run, as does a probe or Autobahn failure, or a
# non-zero exit after SIGTERM (ASan's leak check runs at exit).
#   scripts/asan.sh                   all of the above
#   ASAN_AUTOBAHN=0 scripts/asan.sh   skip Autobahn
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
shared=${SWITCHBOARD_SHARED:-$root/../shared}
scratch=${ASAN_SCRATCH:-.build-asan}
out=${ASAN_OUT:-$(mktemp -d /tmp/switchboard-asan.XXXXXX)}
mkdir -p "$out"
start=$(date +%s)

sanitizers=(--sanitize=address)
ubsan=""
if echo 'let x = 1' | swiftc -sanitize=undefined -parse - >/dev/null 2>&1; then sanitizers+=(--sanitize=undefined); ubsan=1; fi
echo "== swift build ${sanitizers[*]} (scratch $scratch)"
swift build "${sanitizers[@]}" --product switchboard --scratch-path "$scratch" 2>&1 \
  | { grep -vE "^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Write|Linking|Applying|Merging|Wrapping)|Cannot export local symbol '__asan" || true; }
bin="$(swift build "${sanitizers[@]}" --scratch-path "$scratch" --show-bin-path)/switchboard"
echo "   built in $(( $(date +%s) - start ))s"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); admin=$(free_port)
# halt_on_error=0 / UBSan print_stacktrace: collect every report; log_path keeps them apart from the gateway log.
export ASAN_OPTIONS="log_path=$out/asan detect_leaks=1 halt_on_error=0 ${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="log_path=$out/ubsan print_stacktrace=1 halt_on_error=0 ${UBSAN_OPTIONS:-}"
# No Swift backtracer helper: ASan prints the stack itself, and the helper forked from an ASan process can hang.
SWIFT_BACKTRACE=enable=no "$bin" --port "$port" --admin-port "$admin" --echo-path /echo --threads 2 --log-level warn 2> "$out/gateway.log" &
gw=$!
trap 'kill -KILL $gw 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$admin/health', timeout=1)" 2>/dev/null && break
  sleep 0.2
done
status=0
echo "== shared cases: probe.py --path /echo"
python3 "$shared/cases/probe.py" --port "$port" --path /echo > "$out/probe-echo.txt" 2>&1 || status=1
echo "   $(grep -c ' PASS ' "$out/probe-echo.txt") PASS, $(grep -cE ' (FAIL|ERROR) ' "$out/probe-echo.txt") FAIL"; grep -E ' (FAIL|ERROR) ' "$out/probe-echo.txt" || true
echo "== shared cases: probe.py --path /ws --strict"
python3 "$shared/cases/probe.py" --port "$port" --path /ws --strict > "$out/probe-ws.txt" 2>&1 || status=1
echo "   $(grep -c ' PASS ' "$out/probe-ws.txt") PASS, $(grep -cE ' (FAIL|ERROR) ' "$out/probe-ws.txt") FAIL"; grep -E ' (FAIL|ERROR) ' "$out/probe-ws.txt" || true
if [[ ${ASAN_AUTOBAHN:-1} = 1 ]]; then
  echo "== Autobahn|Testsuite (${AB_CASES:-1.*,2.*,3.*,4.*,5.*,6.*,7.*,10.*}) against /echo"
  if [[ -x "${AUTOBAHN_VENV:-$HOME/.cache/autobahn-venv}/bin/wstest" ]]; then
    ab_start=$(date +%s)
    AB_CASES=${AB_CASES:-1.*,2.*,3.*,4.*,5.*,6.*,7.*,10.*} AB_FAST=1 \
      bash "$shared/tools/autobahn/run.sh" "ws://127.0.0.1:$port/echo" "$out/autobahn" || true
    python3 scripts/autobahn-verdict.py "$out/autobahn/report/index.json" || status=1
    echo "   Autobahn: $(( $(date +%s) - ab_start ))s"
  else
    echo "   wstest not installed (scripts/deps.sh test installs it)"; status=1
  fi
fi
kill -TERM $gw
exit_code=0; wait $gw || exit_code=$?
trap - EXIT
[[ $exit_code -eq 0 ]] || { echo "gateway exited $exit_code after SIGTERM (log: $out/gateway.log)"; status=1; }
shopt -s nullglob
logs=("$out"/asan.* "$out"/ubsan.*)
reports=0
[[ ${#logs[@]} -gt 0 ]] && reports=$(cat "${logs[@]}" | grep -cE "ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:" || true)
# UBSan without log_path support in some runtimes writes to stderr: count those too.
reports=$(( reports + $(grep -cE "ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:" "$out/gateway.log" || true) ))
echo "== ASan${ubsan:+/UBSan}: $reports report(s); logs under $out; $(( $(date +%s) - start ))s"
if [[ $reports -gt 0 ]]; then cat "${logs[@]}" "$out/gateway.log" | grep -A12 -E "ERROR: |runtime error:" | head -60; status=1; fi
exit $status
