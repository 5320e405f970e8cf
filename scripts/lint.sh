#!/usr/bin/env bash
# `swift format lint --strict` (ships with the toolchain) over every Swift file of the repository, with the
# checked-in .swift-format (4-space indent, 160 columns, semicolons allowed in one-line bodies: the code's
# existing style, so `swift format format -i -r .` changes as little as possible).
#   scripts/lint.sh              fails on any finding
#   LINT_REPORT_ONLY=1 scripts/lint.sh   prints the count and per-rule totals, exits 0 (used by
#                                scripts/test.sh until the whole-tree reformat lands)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp /tmp/switchboard-lint.XXXXXX)
trap 'rm -f "$out"' EXIT
mapfile -t files < <(git ls-files '*.swift' 2>/dev/null || find Sources Tests Fuzz -name '*.swift')
set +e
swift format lint --strict --configuration .swift-format "${files[@]}" > "$out" 2>&1
status=$?
set -e
count=$(grep -cE ": (error|warning): \[" "$out" || true)
echo "swift format lint --strict: $count finding(s) in ${#files[@]} files"
if [[ $count -gt 0 ]]; then
  # `head` closes its pipe early: SIGPIPE upstream is expected here, not a failure (hence `|| true`).
  sed -nE 's/.*: (error|warning): \[([A-Za-z]+)\].*/\2/p' "$out" | sort | uniq -c | sort -rn | head -15 || true
  if [[ ${LINT_SHOW:-0} = 1 ]]; then cat "$out"; else grep -E ": (error|warning): \[" "$out" | head -5 || true; fi
fi
if [[ ${LINT_REPORT_ONLY:-0} = 1 ]]; then exit 0; fi
[[ $status -eq 0 && $count -eq 0 ]]
