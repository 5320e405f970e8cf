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
set -euo pipefail
mode="${1:-run}"
pkgs=(pkg-config libssl-dev libhiredis-dev zlib1g-dev)
if [[ "$mode" == test ]]; then
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
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  # Packages such as redis-server and nginx start system services on install (Redis on 6379, nginx on
  # port 80 on every interface). The tests start their own servers on 127.0.0.1: keep the daemons off.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
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
