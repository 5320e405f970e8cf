#!/usr/bin/env bash
# Every `Suite/test` docs/security.md names as the proof of a defence must exist in Tests/: a renamed or
# deleted test fails this check instead of leaving the threat model pointing at nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=0; count=0
while IFS=/ read -r suite test; do
    count=$((count + 1))
    file=$(grep -rlE "(struct|class) $suite\b" Tests | head -1 || true)
    if [[ -z $file ]] || ! grep -q "func $test(" "$file"; then echo "  docs/security.md names $suite/$test, which is not in Tests/"; missing=$((missing + 1)); fi
done < <(grep -oE '`[A-Z][A-Za-z0-9]+Tests/[A-Za-z0-9]+`' docs/security.md | tr -d '`' | sort -u)
echo "security doc: $count tests named, $missing missing"
[[ $missing -eq 0 && $count -gt 0 ]]
