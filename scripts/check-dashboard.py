#!/usr/bin/env python3
"""Checks that every switchboard_* metric the Grafana dashboard and the Prometheus alert rules query is
exported by the binary: reads a /metrics exposition (file or URL) and the given JSON/YAML files.
Prints `dashboard: N passed, M failed` and exits 1 on any unknown name."""
import re
import sys
import urllib.request

source, files = sys.argv[1], sys.argv[2:]
text = urllib.request.urlopen(source).read().decode() if source.startswith("http") else open(source).read()
exported = set()
for line in text.splitlines():
    if line.startswith("# TYPE "):
        name, kind = line.split()[2:4]
        exported.add(name)
        if kind == "histogram":
            exported.update({name + "_bucket", name + "_sum", name + "_count"})
wanted = {}
for f in files:
    for name in re.findall(r"\bswitchboard_[a-z0-9_]+", open(f).read()):
        wanted.setdefault(name, f)
bad = sorted(n for n in wanted if n not in exported)
for n in bad:
    print("  unknown metric %s (in %s)" % (n, wanted[n]))
print("dashboard: %d passed, %d failed" % (len(wanted) - len(bad), len(bad)))
sys.exit(1 if bad else 0)
