#!/usr/bin/env bash
# permessage-deflate figures: bytes, compress/inflate ns per chat message, zlib memory.
#   Benchmarks/deflate/run.sh        builds with -O over Sources/Protocol (about a minute) and runs
# Needs a quiet machine for trustworthy times; sizes and memory are exact anywhere.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${DEFLATE_MEASURE_OUT:-$(mktemp -d /tmp/deflate-measure.XXXXXX)}
swiftc -O -parse-as-library -module-name DeflateMeasure \
    -I "$root/Sources/COpenSSL" -I "$root/Sources/CZlib" \
    "$root"/Sources/Protocol/*.swift "$root/Benchmarks/deflate/DeflateMeasure.swift" \
    -lssl -lcrypto -lz -o "$out/deflate-measure"
"$out/deflate-measure"
