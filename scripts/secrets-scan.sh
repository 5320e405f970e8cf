#!/usr/bin/env bash
# Secrets scan of the repository history: every distinct file version (blob) reachable from HEAD — not only
# the work tree, so a key committed and later deleted is still found — scanned with Yelp's detect-secrets
# (PyPI, pinned; installed into a venv under ~/.cache on first use).
#   scripts/secrets-scan.sh                   history of HEAD
#   SECRETS_SCAN_REVS="--all" scripts/...     every ref instead
# Findings whose hashed secret is listed in .secrets-allowlist (one `sha1  path  why` line each) are shown
# as allowed: the test fixtures that look like secrets on purpose. Any other finding fails the scan.
# Also fails on any PEM private key block in history: the auth tests make their key pairs at run time
# with openssl in a temporary directory (Tests/GatewayTests/AuthTestSupport.swift), never in git.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv=${SWITCHBOARD_CI_VENV:-$HOME/.cache/switchboard-ci-venv}
bash scripts/ci-venv.sh >/dev/null
start=$(date +%s)
work=$(mktemp -d /tmp/switchboard-secrets.XXXXXX)
trap 'rm -rf "$work"' EXIT

# One file per distinct blob, under its path, so findings name the file; the blob id keeps versions apart.
# shellcheck disable=SC2086
git rev-list --objects ${SECRETS_SCAN_REVS:-HEAD} | awk 'NF == 2' | sort -u -k1,1 > "$work/objects"
mkdir -p "$work/tree"
blobs=0
while read -r sha path; do
    [[ $(git cat-file -t "$sha") == blob ]] || continue
    mkdir -p "$work/tree/$path"
    git cat-file blob "$sha" > "$work/tree/$path/$sha"
    blobs=$((blobs + 1))
done < "$work/objects"
commits=$(git rev-list ${SECRETS_SCAN_REVS:-HEAD} | wc -l)

(cd "$work/tree" && "$venv/bin/detect-secrets" scan --all-files .) > "$work/scan.json"
set +e
python3 - "$work/scan.json" "$root/.secrets-allowlist" <<'PY'
import json, re, sys
scan = json.load(open(sys.argv[1]))
allowed = {}
for line in open(sys.argv[2]):
    line = line.strip()
    if line and not line.startswith("#"):
        parts = line.split(None, 2)
        allowed[parts[0]] = parts[2] if len(parts) > 2 else ""
bad, ok = [], []
for path, findings in scan["results"].items():
    logical = path.rsplit("/", 1)[0]  # drop the blob id
    for f in findings:
        entry = f"{logical}:{f['line_number']} {f['type']} ({f['hashed_secret']})"
        (ok if f["hashed_secret"] in allowed else bad).append(entry)
for e in sorted(set(ok)):
    print("  allowed:", e)
for e in sorted(set(bad)):
    print("  FOUND:  ", e)
print(f"detect-secrets: {len(set(bad))} finding(s), {len(set(ok))} allowed by .secrets-allowlist")
sys.exit(1 if bad else 0)
PY
status=$?
set -e
# Belt and braces for the one kind that must never be in git, whatever detect-secrets' plugins think.
if grep -rlE -- "-----BEGIN ([A-Z]+ )?PRIVATE KEY-----" "$work/tree" > "$work/pem" 2>/dev/null; then
    sed "s|$work/tree/||; s|/[0-9a-f]*$||" "$work/pem" | sort -u | sed 's/^/  PRIVATE KEY in history: /'
    status=1
fi
echo "secrets scan: $commits commits, $blobs blobs, $(( $(date +%s) - start ))s"
exit $status
