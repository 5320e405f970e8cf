#!/usr/bin/env bash
# Are the Debian packages Switchboard installs at their current security versions?
# The packages: every name scripts/deps.sh installs (run and test sets) and every name the Dockerfile's runtime
# stage installs, plus the shared libraries the gateway binary actually loads (ldd of the release build when
# there is one, else libssl3/libhiredis0.14/zlib1g). After `apt-get update` (DEBSEC_NO_UPDATE=1 skips it),
# for each package: installed version (dpkg), candidate (apt-cache policy) and whether the candidate comes
# from the security suite. Fails when an installed package has a newer candidate from <codename>-security;
# a newer candidate from the regular suite or -updates is printed but does not fail. Also prints how many
# packages on the whole machine `apt list --upgradable` reports from the security suite. It reports and never
# changes the machine: scripts/deps.sh is what upgrades (every call brings its packages to the candidate), and
# the image's runtime stage runs `apt-get upgrade`. Exit 0 all current, 1 a pending security update, 2 no lists.
#
# What it cannot see (docs/security.md):
#   - the image as built: this checks this machine, and what a fresh `docker build` would install (the
#     candidate); a pushed image keeps the versions of its build day until rebuilt — rebuild on a schedule;
#   - the base images' own packages (debian:bookworm-slim, swift:6.3-bookworm) beyond those named here;
#   - vulnerabilities Debian has not fixed yet (no DSA, "no-dsa", "ignored" in the security tracker): those
#     need the tracker's data (debsecan), which is a network service, not an apt source;
#   - the Swift toolchain (not a Debian package), and PyPI packages in the tools' venvs.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")

# Package names: deps.sh's pkgs arrays, the Dockerfile's `apt-get install` lines in the last stage.
mapfile -t names < <(python3 - <<'PY'
import re
names = set()
deps = open("scripts/deps.sh").read()
for m in re.finditer(r"pkgs\+?=\(([^)]*)\)", deps):
    names.update(m.group(1).split())
docker = re.sub(r"\\\n", " ", open("Dockerfile").read())
final = docker[docker.rindex("\nFROM "):]
for m in re.finditer(r"apt-get install ([^&;]*)", final):
    names.update(w for w in m.group(1).split() if not w.startswith("-"))
print("\n".join(sorted(names)))
PY
)
# Shared libraries the gateway loads, by owning package.
bin=.build/release/switchboard; [[ -x $bin ]] || bin=.build/debug/switchboard
if [[ -x $bin ]]; then
    while read -r lib; do
        owner=$(dpkg -S "$lib" 2>/dev/null | head -1 | cut -d: -f1) || true
        [[ -n $owner ]] && names+=("$owner")
    done < <(ldd "$bin" | awk '$3 ~ /^\// {print $3}' | xargs -r readlink -f | grep -E "libssl|libcrypto|libhiredis|libz\." || true)
else
    names+=(libssl3 libhiredis0.14 zlib1g)
fi
mapfile -t names < <(printf '%s\n' "${names[@]}" | sort -u)

if [[ ${DEBSEC_NO_UPDATE:-0} != 1 ]]; then
    SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    # Without fresh lists the candidates are those of the last update: a pass would mean nothing, so fail.
    $SUDO apt-get -o DPkg::Lock::Timeout=120 update -q >/dev/null || { echo "debian security check: apt-get update failed (no Debian mirror?): cannot tell"; exit 2; }
fi

failed=0
printf '%-28s %-26s %-26s %s\n' package installed candidate verdict
for p in "${names[@]}"; do
    installed=$(dpkg-query -W -f='${Status} ${Version}' "$p" 2>/dev/null | awk '/install ok installed/ {print $4}') || true
    policy=$(LC_ALL=C apt-cache policy "$p" 2>/dev/null)
    candidate=$(awk '/Candidate:/ {print $2}' <<<"$policy")
    [[ -z $candidate || $candidate == "(none)" ]] && { printf '%-28s %-26s %-26s %s\n' "$p" "${installed:--}" "-" "not in the apt sources"; continue; }
    # The version table: the candidate's lines up to the next version say which suites carry it.
    from_security=$(awk -v c="$candidate" '
        /^ (\*\*\*|   ) [^ ]+ [0-9]+$/ { cur = $(NF - 1) }
        /^        [0-9]+ / { if (cur == c && $0 ~ /-security/) print "yes" }' <<<"$policy" | head -1)
    if [[ -z $installed ]]; then
        verdict="not installed here (a fresh image build gets $candidate)"
    elif [[ $installed == "$candidate" ]]; then
        verdict="current"
    elif dpkg --compare-versions "$installed" lt "$candidate"; then
        if [[ $from_security == yes ]]; then verdict="SECURITY UPDATE PENDING"; failed=$((failed + 1))
        else verdict="update available (not from -security)"; fi
    else
        verdict="newer than the candidate (local build or pinned)"
    fi
    printf '%-28s %-26s %-26s %s\n' "$p" "${installed:--}" "$candidate" "$verdict"
done
machine=$(LC_ALL=C apt list --upgradable 2>/dev/null | grep -c -- "-security " || true)
echo "machine-wide: $machine package(s) upgradable from the security suite (apt list --upgradable)"
echo "debian security check: ${#names[@]} packages, $failed pending security update(s), $(( $(date +%s) - start ))s"
if [[ $failed -gt 0 ]]; then
    echo "fix: bash scripts/deps.sh run (or test) upgrades these here; rebuild and push the image (its runtime stage runs apt-get upgrade)"
fi
[[ $failed -eq 0 ]]
