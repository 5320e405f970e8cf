#!/usr/bin/env bash
# Validates every deployment file without a container engine or a cluster:
#   1. docker-compose.yml      `docker-compose config` (Debian's docker-compose), and the files it mounts exist
#   2. deploy/kubernetes/*.yaml  kubernetes-validate --strict (PyPI, in a venv under ~/.cache) for current
#                              Kubernetes versions; the ServiceMonitor (a CRD) against a minimal schema
#   3. deploy/haproxy/*.cfg    haproxy -c -f
#   4. deploy/nginx/*.conf     nginx -t -c, on copies whose writable paths point into a temp dir
#   5. deploy/systemd/*.service  systemd-analyze verify (skipped where systemd-analyze is missing)
#   6. consistency             grace periods above the drain deadline, one drain at a time everywhere
#   7. no drift                the Dockerfile's build-stage commands are the README's
# Runs every check, prints what each said, exits 1 if any failed.
#   KUBERNETES_VERSIONS   versions to validate against [1.37.0 1.32.0]
#   KUBERNETES_VALIDATE_VENV  [~/.cache/kubernetes-validate-venv]
set -uo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failed=()

step() { printf '\n== %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; failed+=("$1"); }
need() { command -v "$1" >/dev/null || { fail "$1 not installed (bash scripts/deps.sh test installs it)"; return 1; }; }

# ---- 1. docker-compose --------------------------------------------------------------------------------
step "docker-compose config (docker-compose.yml)"
if need docker-compose; then
  if out="$(docker-compose -f docker-compose.yml config 2>&1)"; then
    services="$(docker-compose -f docker-compose.yml config --services 2>/dev/null | tr '\n' ' ')"
    ok "docker-compose $(docker-compose version --short 2>/dev/null) accepts it; services: $services"
    # Bind-mounted files must exist (config does not check them).
    missing=""
    while read -r src; do [[ -e "$src" ]] || missing+=" $src"; done < <(grep -oE '^\s*- \./[^:]+' docker-compose.yml | sed -E 's/^\s*- //')
    [[ -z "$missing" ]] && ok "every bind-mounted file exists" || fail "docker-compose.yml mounts missing files:$missing"
  else
    printf '%s\n' "$out"; fail "docker-compose config rejected docker-compose.yml"
  fi
fi

# ---- 2. Kubernetes --------------------------------------------------------------------------------------
step "kubernetes-validate (deploy/kubernetes)"
venv="${KUBERNETES_VALIDATE_VENV:-$HOME/.cache/kubernetes-validate-venv}"
kv="$venv/bin/kubernetes-validate"
if [[ ! -x "$kv" ]]; then
  echo "installing kubernetes-validate into $venv"
  { python3 -m venv "$venv" && "$venv/bin/pip" install -q "kubernetes-validate==1.37.0"; } 2>&1 | tail -5
fi
if [[ -x "$kv" ]]; then
  echo "kubernetes-validate $("$kv" --version 2>&1)"
  for v in ${KUBERNETES_VERSIONS:-1.37.0 1.32.0}; do
    if "$kv" --strict -k "$v" deploy/kubernetes/*.yaml; then ok "Kubernetes $v (strict)"; else fail "kubernetes-validate -k $v"; fi
  done
  # No schema ships for the Prometheus Operator's CRD: check the fields that matter by hand.
  if "$venv/bin/python" - deploy/kubernetes/servicemonitor.yaml deploy/kubernetes/service.yaml <<'PY'
import sys, yaml, jsonschema
sm = yaml.safe_load(open(sys.argv[1]))
svc = yaml.safe_load(open(sys.argv[2]))
schema = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {"type": "object", "required": ["selector", "endpoints"], "additionalProperties": False,
                 "properties": {
                     "selector": {"type": "object", "properties": {"matchLabels": {"type": "object"}}},
                     "namespaceSelector": {"type": "object"}, "jobLabel": {"type": "string"},
                     "endpoints": {"type": "array", "minItems": 1, "items": {
                         "type": "object", "additionalProperties": False, "required": ["port"],
                         "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                                        "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                                        "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                                        "scheme": {"enum": ["http", "https"]}}}}}}}}
jsonschema.validate(sm, schema)
ports = {p["name"] for p in svc["spec"]["ports"]}
labels = svc["metadata"]["labels"]
for e in sm["spec"]["endpoints"]:
    assert e["port"] in ports, f"ServiceMonitor port {e['port']!r} is not a Service port {sorted(ports)}"
for k, v in sm["spec"]["selector"]["matchLabels"].items():
    assert labels.get(k) == v, f"ServiceMonitor selector {k}={v} does not match the Service's labels"
PY
  then ok "servicemonitor.yaml: minimal ServiceMonitor schema, selects the Service, scrapes its admin port"
  else fail "servicemonitor.yaml"; fi
else
  fail "kubernetes-validate could not be installed into $venv (PyPI reachable?)"
fi

# ---- 3. HAProxy -----------------------------------------------------------------------------------------
step "haproxy -c (deploy/haproxy)"
if need haproxy; then
  for f in deploy/haproxy/*.cfg; do
    if out="$(haproxy -c -f "$f" 2>&1)"; then ok "$f: $out"; else printf '%s\n' "$out"; fail "haproxy -c -f $f"; fi
  done
fi

# ---- 4. nginx -------------------------------------------------------------------------------------------
step "nginx -t (deploy/nginx)"
if need nginx; then
  for f in deploy/nginx/*.conf; do
    # The local config's paths are relative to the prefix; the container one writes under /tmp.
    prefix="$tmp/nginx-$(basename "$f" .conf)"
    mkdir -p "$prefix/tmp"
    sed "s#/tmp/#$prefix/tmp/#g" "$f" >"$prefix/nginx.conf"
    if out="$(nginx -e stderr -t -p "$prefix" -c "$prefix/nginx.conf" 2>&1)"; then
      ok "$f: $(tail -n1 <<<"$out" | sed "s#$prefix/##")"
    else
      printf '%s\n' "$out"; fail "nginx -t -c $f"
    fi
  done
fi

# ---- 5. systemd -----------------------------------------------------------------------------------------
step "systemd-analyze verify (deploy/systemd)"
if command -v systemd-analyze >/dev/null; then
  for f in deploy/systemd/*.service; do
    # verify insists that ExecStart exists: point a copy at a real binary.
    bin="$(ls "$root"/.build/release/switchboard "$root"/.build/debug/switchboard 2>/dev/null | head -n1 || true)"
    [[ -n "$bin" ]] || bin=/bin/true
    sed "s#^ExecStart=/usr/local/bin/switchboard#ExecStart=$bin#" "$f" >"$tmp/$(basename "$f")"
    if out="$(systemd-analyze verify "$tmp/$(basename "$f")" 2>&1)" && [[ -z "$out" ]]; then
      ok "$f (ExecStart checked against $bin)"
    else
      printf '%s\n' "$out"; fail "systemd-analyze verify $f"
    fi
  done
else
  echo "skipped: systemd-analyze not available here"
fi

# ---- 6 and 7: consistency and drift (Python: PyYAML from the kubernetes-validate venv) ----------------
step "consistency: grace periods, one drain at a time; no drift: Dockerfile build stage = README"
py="$venv/bin/python"
[[ -x "$py" ]] || py=python3
if "$py" - <<'PY'
import re, sys
import yaml

problems = []
def dur(v):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", str(v).strip())
    n, u = int(m.group(1)), m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u]
def check(cond, what):
    print(("  ok    " if cond else "  WRONG ") + what)
    if not cond: problems.append(what)

# docker-compose: every gateway's stop_grace_period above its drain deadline.
compose = yaml.safe_load(open("docker-compose.yml"))
for name, svc in compose["services"].items():
    env = svc.get("environment") or {}
    if "SWITCHBOARD_DRAIN_DEADLINE" in env:
        g, d = dur(svc.get("stop_grace_period", "10s")), dur(env["SWITCHBOARD_DRAIN_DEADLINE"])
        check(g > d and svc.get("stop_signal", "SIGTERM") == "SIGTERM",
              f"compose {name}: stop_grace_period {g:g}s > drain deadline {d:g}s, SIGTERM")

# Kubernetes: grace > preStop + deadline; maxUnavailable == MAX_DRAINING == PDB; probes on the admin port.
k = {}
import glob
for f in glob.glob("deploy/kubernetes/*.yaml"):
    for doc in yaml.safe_load_all(open(f)):
        if doc: k[doc["kind"]] = doc
cm = k["ConfigMap"]["data"]
pod = k["Deployment"]["spec"]["template"]["spec"]
c = pod["containers"][0]
pre = c["lifecycle"]["preStop"]
pre_s = pre["sleep"]["seconds"] if "sleep" in pre else dur(pre["exec"]["command"][-1])
deadline = dur(cm["SWITCHBOARD_DRAIN_DEADLINE"])
grace = pod["terminationGracePeriodSeconds"]
check(grace > pre_s + deadline, f"k8s: terminationGracePeriodSeconds {grace} > preStop {pre_s:g}s + drain deadline {deadline:g}s")
check(dur(cm["SWITCHBOARD_DRAIN_DELAY"]) + dur(cm["SWITCHBOARD_DRAIN_WINDOW"]) < deadline,
      "k8s: drain delay + drain window < drain deadline")
mu = k["Deployment"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"]
check(str(mu) == cm["SWITCHBOARD_MAX_DRAINING"] == str(k["PodDisruptionBudget"]["spec"]["maxUnavailable"]),
      f"k8s: rollingUpdate.maxUnavailable {mu} == SWITCHBOARD_MAX_DRAINING {cm['SWITCHBOARD_MAX_DRAINING']} == PDB maxUnavailable")
check(c["readinessProbe"]["httpGet"]["path"] == "/ready" and c["livenessProbe"]["httpGet"]["path"] == "/health"
      and c["readinessProbe"]["httpGet"]["port"] == c["livenessProbe"]["httpGet"]["port"] == "admin",
      "k8s: readiness /ready and liveness /health on the admin port")
check("requests" in c["resources"] and "limits" in c["resources"], "k8s: resource requests and limits")
check(int(cm["SWITCHBOARD_THREADS"]) == int(float(c["resources"]["limits"]["cpu"])), "k8s: SWITCHBOARD_THREADS == CPU limit")

# systemd: TimeoutStopSec above the deadline in the example environment file.
unit = open("deploy/systemd/switchboard.service").read()
envf = dict(l.split("=", 1) for l in open("deploy/systemd/switchboard.env").read().splitlines() if l and not l.startswith("#"))
tss = dur(re.search(r"^TimeoutStopSec=(\S+)", unit, re.M).group(1))
check(re.search(r"^KillSignal=SIGTERM$", unit, re.M) is not None and tss > dur(envf["SWITCHBOARD_DRAIN_DEADLINE"]),
      f"systemd: KillSignal=SIGTERM, TimeoutStopSec {tss:g}s > drain deadline {envf['SWITCHBOARD_DRAIN_DEADLINE']}")

# HAProxy: a draining node (/ready 503) leaves rotation before its listener closes (drain delay).
for f in ("deploy/haproxy/haproxy.cfg", "deploy/haproxy/haproxy.container.cfg"):
    cfg = open(f).read()
    ds = re.search(r"default-server .*?(?<![a-z])inter (\S+).*?(?<![a-z])fall (\d+)", cfg)
    out_after = dur(ds.group(1)) * int(ds.group(2))
    check("uri /ready" in cfg and "timeout tunnel" in cfg and out_after < dur(cm["SWITCHBOARD_DRAIN_DELAY"]),
          f"{f}: checks /ready, tunnel timeout set, a 503 takes a node out in {out_after:g}s < drain delay")

# No drift: the Dockerfile's build-stage commands are commands of the README.
def commands(lines):
    out = []
    for line in lines:
        for part in line.split("&&"):
            part = " ".join(part.split())
            if part: out.append(part)
    return out
readme = open("README.md").read()
blocks = re.findall(r"```(?:sh|bash|shell)\n(.*?)```", readme, re.S)
readme_cmds = set(commands(l for b in blocks for l in b.splitlines() if not l.strip().startswith("#")))
quick_start = commands(blocks[0].splitlines()) if blocks else []
docker = open("Dockerfile").read().replace("\\\n", " ")
stage = re.search(r"^FROM \S+ AS build\s*$(.*?)^FROM ", docker, re.S | re.M | re.I)
check(stage is not None, "Dockerfile: a stage named `build`")
build_cmds = [c for c in commands(re.findall(r"^RUN (.*)$", stage.group(1) if stage else "", re.M))
              if c.startswith(("bash scripts/", "swift "))]
check(any(c.startswith("bash scripts/deps.sh") for c in build_cmds) and any(c.startswith("swift build") for c in build_cmds),
      "Dockerfile build stage installs with scripts/deps.sh and builds with swift build")
for c in build_cmds:
    check(c in readme_cmds, f"README has the Dockerfile's `{c}`")
for c in build_cmds:
    if c.startswith("swift build"):
        plain = " ".join(w for w in c.split() if w != "--static-swift-stdlib")
        check(plain in quick_start, f"the README's quick start builds the same way: `{plain}`")
sys.exit(1 if problems else 0)
PY
then ok "consistency and no drift"; else fail "consistency / drift (WRONG lines above)"; fi

echo
if ((${#failed[@]})); then
  printf 'validate-deploy: %d check(s) failed:\n' "${#failed[@]}"; printf '  - %s\n' "${failed[@]}"
  exit 1
fi
echo "validate-deploy: all checks passed"
