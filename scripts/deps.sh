#!/usr/bin/env bash
# Installs what Switchboard needs from Debian, skipping packages already installed.
#   scripts/deps.sh run    build and run one node: pkg-config, libssl-dev, libhiredis-dev, zlib1g-dev
#   scripts/deps.sh test   also what the tests start: redis-server, haproxy, chromium and node-typescript
#                          (the JS client), python3 (with websockets for
#                          the wss tests, python-socketio for the Socket.IO tests), and the
#                          Autobahn|Testsuite (../shared/tools/autobahn/setup.sh, Python 2.7 from the image),
#                          and what scripts/validate-deploy.sh runs: docker-compose, nginx, python3-venv,
#                          and the offline checks' tools (python3-yaml, python3-websockets, scripts/ci-venv.sh)
# The Swift 6 toolchain itself must be on PATH (swift.org builds; Debian has no Swift 6 package).
#
# Security updates: every package above that is installed but older than apt's candidate (a Debian security or
# point release since the machine or image was made), plus the libraries the binary loads (libssl3,
# libhiredis0.14, zlib1g) and ca-certificates, is upgraded to the candidate. Knowing the candidate needs fresh
# package lists, so `apt-get update` runs on every call; when the sources cannot be reached and nothing is
# missing the script goes on with a warning (an offline machine builds with what it has).
# DEPS_NO_UPGRADE=1: install what is missing only (and skip `apt-get update` when nothing is).
# scripts/debian-security-check.sh reports the versions afterwards (docs/security.md: what it cannot see).
set -euo pipefail
mode="${1:-run}"
pkgs=(pkg-config libssl-dev libhiredis-dev zlib1g-dev)
# Kept at their current versions when installed, never installed from here (the -dev packages pull them in).
runtime=(libssl3 libhiredis0.14 zlib1g ca-certificates)
if [[ "$mode" == test ]]; then
  # The tests run `openssl` (a throwaway CA) and `curl`; lint and the secrets scan read the history with git.
  pkgs+=(openssl curl ca-certificates git)
  pkgs+=(redis-server haproxy python3 python3-prometheus-client python3-websockets procps iproute2 nodejs node-ws)
  # The JS client: its declarations checked by tsc, and the client and the console page in headless Chromium.
  pkgs+=(node-typescript chromium)
  # The Socket.IO tests drive Debian's python-socketio client (its WebSocket transport is python3-websocket).
  pkgs+=(python3-socketio python3-websocket)
  # scripts/validate-deploy.sh: `docker-compose config`, `nginx -t`, a venv for kubernetes-validate.
  pkgs+=(docker-compose nginx python3-venv)
  # scripts/check-container.sh reads YAML; scripts/smoke.sh speaks WebSocket.
  pkgs+=(python3-yaml python3-websockets)
fi
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
lists_fresh=0
if ((${#missing[@]})) || [[ ${DEPS_NO_UPGRADE:-0} != 1 ]]; then
  update_log=$(mktemp /tmp/switchboard-deps.XXXXXX)
  # Another apt run on the machine holds the lock for a while: wait for it rather than fail.
  if $SUDO apt-get -o DPkg::Lock::Timeout=120 update -q >"$update_log" 2>&1; then
    lists_fresh=1
  elif ((${#missing[@]})); then
    cat "$update_log" >&2; echo "deps: apt-get update failed and ${missing[*]} must be installed" >&2; exit 1
  else
    echo "deps: apt-get update failed (offline?): installed packages not checked for security updates" >&2
  fi
  rm -f "$update_log"
fi
# Installed, and older than the candidate of the lists just fetched.
outdated=()
if ((lists_fresh)) && [[ ${DEPS_NO_UPGRADE:-0} != 1 ]]; then
  for p in $(printf '%s\n' "${pkgs[@]}" "${runtime[@]}" | sort -u); do
    installed "$p" || continue
    have=$(dpkg-query -W -f='${Version}' "$p")
    candidate=$(LC_ALL=C apt-cache policy "$p" | awk '/Candidate:/ {print $2}')
    [[ -n $candidate && $candidate != "(none)" ]] && dpkg --compare-versions "$have" lt "$candidate" && outdated+=("$p")
  done
fi
if ((${#missing[@]} + ${#outdated[@]})); then
  # Packages such as redis-server and nginx start system services on install or upgrade (Redis on 6379, nginx
  # on port 80 on every interface). The tests start their own servers on 127.0.0.1: keep the daemons off.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=120 install -y --no-install-recommends "${missing[@]}"
  fi
  if ((${#outdated[@]})); then
    echo "deps: upgrading to the current Debian versions: ${outdated[*]}" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=120 install -y --no-install-recommends --only-upgrade "${outdated[@]}"
  fi
fi
command -v swift >/dev/null || { echo "deps: swift (6.x) is not on PATH; install a Swift 6 toolchain from swift.org" >&2; exit 1; }
if [[ "$mode" == test ]]; then
  here="$(cd "$(dirname "$0")/.." && pwd)"
  shared="${SWITCHBOARD_SHARED:-$here/../shared}"
  # detect-secrets, check-jsonschema and zizmor (PyPI, pinned) for the offline checks in scripts/test.sh.
  bash "$here/scripts/ci-venv.sh" >/dev/null
  if [[ -x "$shared/tools/autobahn/setup.sh" ]]; then
    bash "$shared/tools/autobahn/setup.sh" >&2
  else
    echo "deps: $shared/tools/autobahn/setup.sh not found; the Autobahn run will be skipped" >&2
  fi
fi
