#!/usr/bin/env bash
# Container hardening check, offline, of the files that define how the gateway runs:
#   Dockerfile (final stage): a non-root USER (numeric, so Kubernetes' runAsNonRoot can verify it); ENTRYPOINT,
#     CMD and HEALTHCHECK in exec form and none of them a shell (the image needs no shell at run time);
#   deploy/kubernetes/*.yaml, every container of every workload: readOnlyRootFilesystem, runAsNonRoot (pod or
#     container), allowPrivilegeEscalation false, capabilities drop ALL, not privileged, no exec probe or
#     hook through a shell;
#   docker-compose.yml, every service built from this Dockerfile: read_only, cap_drop ALL, no-new-privileges.
# Prints each check; exits 1 if any fails.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
python3 - <<'PY'
import json, re, sys, glob
import yaml

failures = 0
def check(ok, what):
    global failures
    print(("  ok    " if ok else "  FAIL  ") + what)
    if not ok:
        failures += 1

SHELLS = {"sh", "bash", "dash", "ash", "zsh", "busybox"}
def is_shell(argv):
    return bool(argv) and argv[0].rsplit("/", 1)[-1] in SHELLS

# --- Dockerfile: logical lines (continuations joined) of the last stage.
text = open("Dockerfile").read()
lines = re.sub(r"\\\n", " ", text).splitlines()
instructions = [l.strip() for l in lines if l.strip() and not l.strip().startswith("#")]
last_from = max(i for i, l in enumerate(instructions) if l.upper().startswith("FROM "))
final = instructions[last_from:]
print("Dockerfile (final stage: %s)" % final[0])
def instr(name):
    return [l[len(name):].strip() for l in final if l.upper().startswith(name + " ")]
users = instr("USER")
user = users[-1] if users else ""
uid = user.split(":")[0]
check(bool(users), "USER is set in the final stage")
check(uid.isdigit() and int(uid) != 0, f"USER is a numeric non-root uid ({user or 'none'})")
def exec_form(name, value):
    try:
        argv = json.loads(value)
        return isinstance(argv, list), argv
    except ValueError:
        return False, None
for name in ("ENTRYPOINT", "CMD"):
    for v in instr(name):
        ok, argv = exec_form(name, v)
        check(ok, f"{name} in exec form: {v}")
        if ok:
            check(not is_shell(argv), f"{name} runs no shell ({argv[0] if argv else ''})")
for v in instr("HEALTHCHECK"):
    m = re.search(r"\bCMD\s+(.*)$", v)
    if m:
        ok, argv = exec_form("HEALTHCHECK", m.group(1))
        check(ok, "HEALTHCHECK CMD in exec form")
        check(ok and not is_shell(argv), f"HEALTHCHECK runs no shell ({argv[0] if ok and argv else m.group(1)[:40]})")

# --- Kubernetes workloads.
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}
seen = 0
for path in sorted(glob.glob("deploy/kubernetes/*.yaml")):
    for doc in yaml.safe_load_all(open(path)):
        if not isinstance(doc, dict):
            continue
        kind = doc.get("kind")
        if kind == "Pod":
            pod = doc.get("spec", {})
        elif kind in WORKLOADS:
            pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        elif kind == "CronJob":
            pod = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        else:
            continue
        seen += 1
        name = f"{path} {kind}/{doc.get('metadata', {}).get('name')}"
        print(name)
        psc = pod.get("securityContext") or {}
        check(pod.get("hostNetwork") is not True and pod.get("hostPID") is not True, "no hostNetwork / hostPID")
        for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
            sc = c.get("securityContext") or {}
            cn = c.get("name")
            check(sc.get("readOnlyRootFilesystem") is True, f"{cn}: readOnlyRootFilesystem: true")
            check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{cn}: runAsNonRoot: true")
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            check(uid is None or uid != 0, f"{cn}: runAsUser is not 0 ({uid})")
            check(sc.get("allowPrivilegeEscalation") is False, f"{cn}: allowPrivilegeEscalation: false")
            check(sc.get("privileged") is not True, f"{cn}: not privileged")
            drops = [d.upper() for d in ((sc.get("capabilities") or {}).get("drop") or [])]
            check("ALL" in drops, f"{cn}: capabilities drop ALL")
            adds = (sc.get("capabilities") or {}).get("add") or []
            check(not adds, f"{cn}: no capabilities added ({adds})")
            execs = []
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                e = (c.get(probe) or {}).get("exec")
                if e: execs.append((probe, e.get("command") or []))
            for hook in ("preStop", "postStart"):
                e = ((c.get("lifecycle") or {}).get(hook) or {}).get("exec")
                if e: execs.append((hook, e.get("command") or []))
            for what, argv in execs:
                check(not is_shell(argv), f"{cn}: {what} exec runs no shell ({' '.join(argv)})")
check(seen > 0, "found a Kubernetes workload to check")

# --- docker-compose: services built from this Dockerfile.
compose = yaml.safe_load(open("docker-compose.yml"))
for name, svc in (compose.get("services") or {}).items():
    if svc.get("image", "").split(":")[0] != "switchboard" and "build" not in svc:
        continue
    print(f"docker-compose.yml service {name}")
    check(svc.get("read_only") is True, f"{name}: read_only: true")
    check("ALL" in [c.upper() for c in svc.get("cap_drop") or []], f"{name}: cap_drop ALL")
    check("no-new-privileges:true" in (svc.get("security_opt") or []), f"{name}: security_opt no-new-privileges:true")
    check(str(svc.get("user", "10001")).split(":")[0] not in ("0", "root"), f"{name}: not run as root")
print(f"container check: {failures} failure(s)")
sys.exit(1 if failures else 0)
PY
echo "check-container: $(( $(date +%s) - start ))s"
