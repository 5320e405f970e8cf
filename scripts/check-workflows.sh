#!/usr/bin/env bash
# Offline checks of the hosted CI definitions in .github/workflows/:
#   check-jsonschema --builtin-schema vendor.github-workflows   structure (the schema ships inside the package)
#   zizmor --offline                                              security: template injection, excessive
#                                                                 permissions, unpinned actions, credential leaks
# Both from PyPI, pinned, in the venv scripts/ci-venv.sh keeps under ~/.cache. Fails on any error or finding.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(bash scripts/ci-venv.sh)
start=$(date +%s)
shopt -s nullglob
files=(.github/workflows/*.yml .github/workflows/*.yaml)
[[ ${#files[@]} -gt 0 ]] || { echo "no workflows under .github/workflows"; exit 1; }
status=0
echo "== check-jsonschema (vendor.github-workflows): ${files[*]}"
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${files[@]}" || status=1
# The repository's own policy on top: actions pinned by a full commit SHA, no event payload in run: scripts.
echo "== pinning and run: policy"
python3 - "${files[@]}" <<'PY' || status=1
import re, sys, yaml
bad = 0
for path in sys.argv[1:]:
    doc = yaml.safe_load(open(path))
    for name, job in (doc.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            uses = step.get("uses")
            if uses and not uses.startswith("./") and not re.search(r"@[0-9a-f]{40}$", uses):
                print(f"  {path} {name}: '{uses}' is not pinned by a full commit SHA"); bad += 1
            run = step.get("run") or ""
            if "${{" in run:
                print(f"  {path} {name}: an expression inside run: (pass it through env:)"); bad += 1
print(f"  {bad} violation(s)")
sys.exit(1 if bad else 0)
PY
echo "== zizmor --offline"
"$venv/bin/zizmor" --offline --no-progress "${files[@]}" || status=1
echo "check-workflows: $( ((status == 0)) && echo ok || echo FAILED ) in $(( $(date +%s) - start ))s"
exit $status
