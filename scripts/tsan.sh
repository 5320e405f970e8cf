#!/usr/bin/env bash
# ThreadSanitizer run: builds everything (the gateway binary and the tests) with --sanitize=thread into its
# own scratch path, then runs the chosen tests; the gateway processes the integration tests start are the
# TSan binary too (GatewayProcess finds `switchboard` beside the test bundle; SWITCHBOARD_BIN_DIR pins it).
#   scripts/tsan.sh                       the default filter below (unit tests + a few gateway suites)
#   scripts/tsan.sh 'RoomsTests|Drain'    a swift-test --filter regex of your own
#   TSAN_FILTER=. scripts/tsan.sh         the whole suite (2 cores: ~8 min cold build, ~4.5 min of tests)
# Every report from the test process and from every gateway it starts is written to $out/tsan.<pid>
# (TSAN_OPTIONS log_path); the run fails if there is any, or if a test fails. No suppressions file:
# a report is fixed or the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=${TSAN_SCRATCH:-.build-tsan}
filter=${1:-${TSAN_FILTER:-RuntimeTests|ProtocolTests|ClusterBusTests|RoomsTests|LifecycleTests|DrainTests|ClusterTests|AuthHandshakeTests|LimitsTests}}
out=${TSAN_OUT:-$(mktemp -d /tmp/switchboard-tsan.XXXXXX)}
mkdir -p "$out"
start=$(date +%s)

echo "== swift build --sanitize=thread (scratch $scratch)"
swift build --sanitize=thread --build-tests --scratch-path "$scratch" 2>&1 \
  | { grep -vE "^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Write|Linking|Applying|Merging|Wrapping)" || true; }
bin_dir=$(swift build --sanitize=thread --scratch-path "$scratch" --show-bin-path)

echo "== swift test --sanitize=thread --filter '$filter'"
# halt_on_error=0: collect every report of the run, not just the first; second_deadlock_stack for
# lock-order reports. SWITCHBOARD_TEST_TIME_SCALE stretches the tests' wall-clock bounds (not sleeps).
set +e
# SWIFT_BACKTRACE=enable=no: on a crash Swift's backtracer forks a helper, and TSan's runtime fails a CHECK
# in that child and hangs the run for the helper's 30 s timeout; the "Fatal error" line still prints.
SWIFT_BACKTRACE=enable=no \
TSAN_OPTIONS="log_path=$out/tsan halt_on_error=0 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
SWITCHBOARD_BIN_DIR="$bin_dir" SWITCHBOARD_TEST_TIME_SCALE="${SWITCHBOARD_TEST_TIME_SCALE:-4}" \
  swift test --sanitize=thread --skip-build --scratch-path "$scratch" --filter "$filter" > "$out/swift-test.log" 2>&1
status=$?
set -e
grep -E "✘" "$out/swift-test.log" | head -40 || true
grep -E "Test run with|Executed [1-9][0-9]* tests" "$out/swift-test.log" | tail -2 || true
grep -E "Fatal error|Precondition failed|signal code" "$out/swift-test.log" | head -5 || true
shopt -s nullglob
logs=("$out"/tsan.*)
reports=0
[[ ${#logs[@]} -gt 0 ]] && reports=$(cat "${logs[@]}" | grep -cE "WARNING: ThreadSanitizer|ThreadSanitizer: CHECK failed" || true)
files=${#logs[@]}
echo "== ThreadSanitizer: $reports report(s) in $files process log(s) under $out; test exit $status; $(( $(date +%s) - start ))s"
if [[ $reports -gt 0 ]]; then
  cat "${logs[@]}" | grep -E "WARNING: ThreadSanitizer|^    #[0-3] " | head -80
fi
[[ $status -eq 0 && $reports -eq 0 ]]
