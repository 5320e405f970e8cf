#!/usr/bin/env bash
# Builds a Protocol fuzzer with libFuzzer + AddressSanitizer and runs it.
#   Fuzz/run.sh                 200,000 runs (FUZZ_RUNS overrides), corpus in $FUZZ_CORPUS or a temp dir
#   FUZZ_RUNS=0 Fuzz/run.sh     build only
#   FUZZ_TARGET=envelope Fuzz/run.sh   the envelope scanner, differential against JSONSerialization
#                               (Fuzz/FuzzEnvelope.swift; seeds from Fuzz/corpus/envelope)
#   FUZZ_TARGET=protocol        (default) HTTP heads, frames, envelope (Fuzz/FuzzProtocol.swift)
#   FUZZ_TARGET=socketio Fuzz/run.sh   the Engine.IO / Socket.IO target (Fuzz/FuzzSocketIO.swift, seeds in Fuzz/corpus-socketio)
# Extra arguments are passed to libFuzzer (e.g. -max_len=4096, a crash file to reproduce).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${FUZZ_TARGET:-protocol}
case "$target" in
    protocol) entry="$root/Fuzz/FuzzProtocol.swift" ;;
    envelope) entry="$root/Fuzz/FuzzEnvelope.swift" ;;
    socketio) entry="$root/Fuzz/FuzzSocketIO.swift" ;;
    *) echo "unknown FUZZ_TARGET '$target' (protocol, envelope or socketio)" >&2; exit 2 ;;
esac
out=${FUZZ_OUT:-$(mktemp -d /tmp/fuzz-$target.XXXXXX)}
mkdir -p "$out"
bin="$out/fuzz-$target"

swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name Fuzz -use-ld=lld \
    -I "$root/Sources/COpenSSL" -I "$root/Sources/CZlib" \
    "$root"/Sources/Protocol/*.swift "$entry" \
    -lssl -lcrypto -lz -o "$bin"

runs=${FUZZ_RUNS:-200000}
[ "$runs" = 0 ] && { echo "built $bin"; exit 0; }
corpus=${FUZZ_CORPUS:-$out/corpus}
mkdir -p "$corpus"
if [ "$target" = socketio ]; then
    cp "$root"/Fuzz/corpus-socketio/* "$corpus"/
    exec "$bin" -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@" "$corpus"
fi
if [ "$target" = envelope ]; then
    cp "$root"/Fuzz/corpus/envelope/* "$corpus/"
    exec "$bin" -runs="$runs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@" "$corpus"
fi
# Seeds: an upgrade request with pipelined frames, a fragmented masked message, a JSON op.
printf 'GET /ws?t=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58' > "$corpus/seed-upgrade"
printf '\x01\x83\x00\x00\x00\x00Hel\x89\x80\x00\x00\x00\x00\x80\x82\x00\x00\x00\x00lo\x88\x82\x00\x00\x00\x00\x03\xe8' > "$corpus/seed-frames"
printf '\x01\x03Hel\x80\x02lo\x88\x02\x03\xe8' > "$corpus/seed-server-frames"
# permessage-deflate: RFC 7692's compressed "Hello", whole and fragmented, and an offer list.
printf '\xc1\x87\x00\x00\x00\x00\xf2\x48\xcd\xc9\xc9\x07\x00\x41\x83\x00\x00\x00\x00\xf2\x48\xcd\x80\x84\x00\x00\x00\x00\xc9\xc9\x07\x00' > "$corpus/seed-deflate"
printf 'permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits="10"; server_no_context_takeover' > "$corpus/seed-extensions"
printf '{"op":"publish","room":"lobby","data":{"a":[1,true,null]},"id":"x"}' > "$corpus/seed-json"
printf 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n' > "$corpus/seed-response"

"$bin" -runs="$runs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@" "$corpus"
