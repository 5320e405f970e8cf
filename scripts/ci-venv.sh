#!/usr/bin/env bash
# The Python tools the offline checks use, pinned, in one venv under ~/.cache (Debian's python3 refuses
# `pip install` outside a venv). Idempotent: installs only what is missing or at another version.
#   detect-secrets   scripts/secrets-scan.sh
#   check-jsonschema scripts/check-workflows.sh (--builtin-schema vendor.github-workflows)
#   zizmor           scripts/check-workflows.sh (GitHub Actions security audit, --offline)
set -euo pipefail
venv=${SWITCHBOARD_CI_VENV:-$HOME/.cache/switchboard-ci-venv}
pins=(detect-secrets==1.5.0 check-jsonschema==0.39.0 zizmor==1.32.0)
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
have=$("$venv/bin/python" -m pip freeze 2>/dev/null | grep -cixF -f <(printf '%s\n' "${pins[@]}") || true)
if [[ $have -ne ${#pins[@]} ]]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}"
fi
echo "$venv"
