#!/usr/bin/env bash
# Builds libFuzzer + AddressSanitizer binaries and runs them over the seed corpora checked in under
# Fuzz/corpus/<target>/ (read only; new inputs go to a scratch corpus).
#   Fuzz/run.sh [target ...]        targets: protocol envelope socketio admin-http jwt resp (default: all six)
#   FUZZ_RUNS=N                     runs per target (default 200,000)
#   FUZZ_SECONDS=S                  instead: S seconds per target (-max_total_time), e.g. CI's bounded run
#   FUZZ_RUNS=0                     build only
#   FUZZ_OUT=dir                    where binaries and scratch corpora go (default a temp dir)
# Extra arguments after `--` are passed to libFuzzer (e.g. -- -max_len=4096, or a crash file to reproduce).
# SwiftPM executables cannot host libFuzzer's main, so each target is one swiftc invocation over the sources
# it needs:
#   protocol    Protocol sources + FuzzProtocol.swift: handshake, frame reader (deflate too), envelope, responses
#   envelope    Protocol sources + FuzzEnvelope.swift: the envelope scanner, differential against JSONSerialization
#   socketio    Protocol sources + FuzzSocketIO.swift: Engine.IO / Socket.IO packets and the session machine
#   admin-http  Protocol sources + FuzzAdminHTTP.swift: the admin port's head parser and framing rule
#   jwt         Runtime sources + the Auth files JWT.swift needs + FuzzJWT.swift (module named Runtime)
#   resp        ClusterBus's RedisReply.swift + RedisPipeline.swift + FuzzRESP.swift over hiredis's reader (module named Runtime)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_OUT:-$(mktemp -d /tmp/fuzz-switchboard.XXXXXX)}
mkdir -p "$out"
targets=()
while [[ $# -gt 0 && $1 != -- ]]; do targets+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
[[ ${#targets[@]} -eq 0 ]] && targets=(protocol envelope socketio admin-http jwt resp)
swiftc_fuzz=(swiftc -sanitize=fuzzer,address -parse-as-library -O -use-ld=lld)
auth="$root/Sources/Gateway/Auth"

build() {
    local t=$1 bin="$out/fuzz-$1"
    case $t in
    protocol | envelope | socketio | admin-http)
        local entry
        case $t in
        protocol) entry=FuzzProtocol.swift ;;
        envelope) entry=FuzzEnvelope.swift ;;
        socketio) entry=FuzzSocketIO.swift ;;
        admin-http) entry=FuzzAdminHTTP.swift ;;
        esac
        "${swiftc_fuzz[@]}" -module-name Fuzz -I "$root/Sources/COpenSSL" -I "$root/Sources/CZlib" \
            "$root"/Sources/Protocol/*.swift "$root/Fuzz/$entry" -lssl -lcrypto -lz -o "$bin" ;;
    jwt)
        "${swiftc_fuzz[@]}" -module-name Runtime -I "$root/Sources/CLinux" -I "$root/Sources/COpenSSL" \
            "$root"/Sources/Runtime/*.swift "$auth/JWT.swift" "$auth/JWTKeys.swift" "$auth/JWSAlgorithm.swift" \
            "$auth/Base64URL.swift" "$auth/RoomPattern.swift" "$auth/AuthOutcome.swift" \
            "$root/Fuzz/FuzzJWT.swift" -lssl -lcrypto -o "$bin" 2>&1 | { grep -v "ignoring import\|^ *[0-9]* |\|^ *|" || true; } ;;
    resp)
        "${swiftc_fuzz[@]}" -module-name Runtime -I "$root/Sources/CHiredis" \
            "$root/Sources/ClusterBus/RedisReply.swift" "$root/Sources/ClusterBus/RedisPipeline.swift" "$root/Fuzz/FuzzRESP.swift" -lhiredis -o "$bin" 2>&1 \
            | { grep -v "ignoring import\|^ *[0-9]* |\|^ *|" || true; } ;;
    *) echo "unknown fuzz target '$t' (protocol, envelope, socketio, admin-http, jwt, resp)" >&2; exit 2 ;;
    esac
    [[ -x $bin ]] || { echo "fuzz-$t did not build" >&2; exit 1; }
}

runs=${FUZZ_RUNS:-200000}
for t in "${targets[@]}"; do
    start=$(date +%s)
    build "$t"
    echo "built $out/fuzz-$t in $(( $(date +%s) - start ))s"
done
[[ $runs = 0 && -z ${FUZZ_SECONDS:-} ]] && exit 0
for t in "${targets[@]}"; do
    work="$out/corpus-$t"
    mkdir -p "$work"
    if [[ -n ${FUZZ_SECONDS:-} ]]; then limit=(-max_total_time="$FUZZ_SECONDS"); else limit=(-runs="$runs"); fi
    echo "== fuzz-$t ${limit[*]} (seeds: Fuzz/corpus/$t)"
    # -max_len 8 KiB + slack covers the admin head limit; -timeout catches hangs, -rss_limit unbounded growth.
    # Crash inputs go to $out (-artifact_prefix), not the current directory.
    status=0
    # SWIFT_BACKTRACE=enable=no: libFuzzer and ASan print the crash stack themselves; Swift's backtracer
    # helper, forked from an ASan process, was seen to hang for many minutes after a crash.
    SWIFT_BACKTRACE=enable=no "$out/fuzz-$t" "${limit[@]}" -max_len=9000 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/$t-" "$@" "$work" "$root/Fuzz/corpus/$t" > "$out/fuzz-$t.log" 2>&1 || status=$?
    grep -E "^(Done|INFO: seed corpus|==[0-9]+==ERROR|SUMMARY)|Precondition failed|Fatal error" "$out/fuzz-$t.log" || true
    if [[ $status -ne 0 ]]; then
        tail -40 "$out/fuzz-$t.log"
        echo "fuzz-$t failed (exit $status); log $out/fuzz-$t.log; input: $(ls "$out/$t-"* 2>/dev/null | head -1)"
        echo "reproduce: $out/fuzz-$t <input> (a -Onone build of the same files prints the precondition's message)"
        exit 1
    fi
done
