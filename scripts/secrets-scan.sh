#!/usr/bin/env bash
# Secrets scan of the repository history: every distinct file version (blob) reachable from HEAD — not only
# the work tree, so a key committed and later deleted is still found — scanned with Yelp's detect-secrets
# (PyPI, pinned; installed by scripts/ci-venv.sh into a venv under ~/.cache on first use).
#   scripts/secrets-scan.sh                   history of HEAD
#   SECRETS_SCAN_REVS="--all" scripts/...     every ref instead
# Blobs never change, so each blob's findings are cached under ~/.cache/switchboard-secrets/<version>/
# and only blobs not seen before are scanned (SECRETS_SCAN_NO_CACHE=1 rescans everything).
# Findings whose hashed secret is listed in .secrets-allowlist (one `sha1  where  why` line each) are shown
# as allowed: the test fixtures that look like secrets on purpose. Any other finding fails the scan.
# Any PEM private key block in history fails too, whatever the allowlist says: the auth tests make their
# key pairs at run time with openssl in a temporary directory (Tests/GatewayTests/AuthTestSupport.swift).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(bash scripts/ci-venv.sh)
start=$(date +%s)
work=$(mktemp -d /tmp/switchboard-secrets.XXXXXX)
trap 'rm -rf "$work"' EXIT
set +e
# shellcheck disable=SC2086
"$venv/bin/python" - "$work" "${SECRETS_SCAN_REVS:-HEAD}" <<'PY'
import json, os, re, subprocess, sys, time
work, revs = sys.argv[1], sys.argv[2].split()
t0 = time.monotonic()
version = subprocess.run([os.path.join(os.path.dirname(sys.executable), "detect-secrets"), "--version"],
                         capture_output=True, text=True).stdout.strip()
cache = os.path.join(os.path.expanduser("~/.cache/switchboard-secrets"), version)
os.makedirs(cache, exist_ok=True)
no_cache = os.environ.get("SECRETS_SCAN_NO_CACHE") == "1"

def git(*args, data=None):
    return subprocess.run(["git", *args], input=data, capture_output=True, check=True).stdout

objects = {}
for line in git("rev-list", "--objects", *revs).decode().splitlines():
    parts = line.split(" ", 1)
    if len(parts) == 2:
        objects.setdefault(parts[0], parts[1])
types = git("cat-file", "--batch-check=%(objectname) %(objecttype)", data="\n".join(objects).encode()).decode()
blobs = {sha: objects[sha] for sha, kind in (l.split() for l in types.splitlines()) if kind == "blob"}
commits = len(git("rev-list", *revs).splitlines())

PEM = re.compile(rb"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----")
todo = [sha for sha in blobs if no_cache or not os.path.exists(os.path.join(cache, sha + ".json"))]
tree = os.path.join(work, "tree")
for sha in todo:
    d = os.path.join(tree, blobs[sha])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, sha), "wb") as f:
        f.write(git("cat-file", "blob", sha))
if todo:
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "detect-secrets"), "scan", "--all-files", "."],
                         cwd=tree, capture_output=True, check=True).stdout
    results = json.loads(out)["results"]
    for sha in todo:
        path = os.path.join(tree, blobs[sha], sha)
        found = [{"type": f["type"], "line": f["line_number"], "hash": f["hashed_secret"]}
                 for f in results.get(os.path.join(blobs[sha], sha), [])]
        data = open(path, "rb").read()
        for m in PEM.finditer(data):
            found.append({"type": "PEM private key", "line": data.count(b"\n", 0, m.start()) + 1, "hash": "pem"})
        with open(os.path.join(cache, sha + ".json"), "w") as f:
            json.dump(found, f)

allowed = {}
for line in open(".secrets-allowlist"):
    line = line.strip()
    if line and not line.startswith("#"):
        allowed[line.split()[0]] = line
bad, ok = set(), set()
for sha, path in blobs.items():
    for f in json.load(open(os.path.join(cache, sha + ".json"))):
        entry = f"{path}:{f['line']} {f['type']} ({f['hash']})"
        (ok if f["hash"] in allowed and f["type"] != "PEM private key" else bad).add(entry)
for e in sorted(ok):
    print("  allowed:", e)
for e in sorted(bad):
    print("  FOUND:  ", e)
print(f"detect-secrets {version}: {len(bad)} finding(s), {len(ok)} allowed by .secrets-allowlist")
print(f"secrets scan: {commits} commits, {len(blobs)} blobs ({len(todo)} scanned now, the rest cached), {time.monotonic() - t0:.0f}s")
sys.exit(1 if bad else 0)
PY
status=$?
exit $status
