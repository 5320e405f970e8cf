#!/usr/bin/env bash
# Interop check of permessage-deflate with another implementation: ws (Debian node-ws, installed by
# `scripts/deps.sh test`) plays a browser-like client against our negotiation and codec, both ways:
# ws's offer → our response → ws accepts it; our compressed messages → ws inflates them; ws's
# compressed message → our Inflater. Exits non-zero on any mismatch.
#   scripts/deflate-interop/run.sh      (builds Sources/Protocol with swiftc -O, about a minute)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mktemp -d /tmp/deflate-interop.XXXXXX)
trap 'rm -rf "$out"' EXIT
swiftc -O -parse-as-library -module-name DeflateInterop -I "$root/Sources/COpenSSL" -I "$root/Sources/CZlib" \
    "$root"/Sources/Protocol/*.swift "$here/check.swift" -lssl -lcrypto -lz -o "$out/check"
text='{"type":"message","room":"team-platform","data":{"user":"Alice","text":"Morning all! The staging deploy finished at 07:40 and the smoke tests are green."}}'
offer=$(node -e "const P=require('/usr/share/nodejs/ws/lib/permessage-deflate.js');const {format}=require('/usr/share/nodejs/ws/lib/extension.js');console.log(format({'permessage-deflate':[new P({},false).offer()]}))")
echo "ws offers: $offer"
mapfile -t ours < <("$out/check" "$offer" "$text")
echo "we answer: ${ours[0]}"
node "$here/interop.js" "${ours[0]}" "${ours[1]}" "${ours[2]}" "$text" | tee "$out/ws.txt"
grep -q '^ws inflated our Hello: "Hello"$' "$out/ws.txt"
grep -q '^ws inflated our chat message equal: true' "$out/ws.txt"
result=$("$out/check" inflate "$(grep '^WSCOMPRESSED' "$out/ws.txt" | cut -d' ' -f2)" "$text")
echo "$result"
[[ "$result" == "switchboard inflated ws's message: equal" ]]
