#!/usr/bin/env bash
# Micro-benchmark of client envelope decoding (issue 11, "bounded work per frame"): ns per byte of a
# memcpy, of the old JSONSerialization path and of Envelope.decodeWithID, for the two hostile 1 MiB
# payloads of the issue, a 1 MiB string and a typical chat message. No server, no sockets; about
# 4 s of one core. Best-of-N timings, so a busy machine inflates them less than it would averages.
#
# usage: Benchmarks/envelope-scan.sh          env: BUDGET_MS=300 (time per measurement), OUT=<build dir>
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$(mktemp -d /tmp/envelope-bench.XXXXXX)}
mkdir -p "$out"
swiftc -O -parse-as-library -module-name EnvelopeBench -use-ld=lld \
    -I "$root/Sources/COpenSSL" \
    "$root"/Sources/Protocol/*.swift "$root/Benchmarks/envelope/EnvelopeBench.swift" \
    -lssl -lcrypto -o "$out/envelope-bench"
"$out/envelope-bench"
