#!/usr/bin/env python3
"""Strict verdict on an Autobahn|Testsuite report: every case must be OK (behaviour and close
behaviour); NON-STRICT, FAILED, UNIMPLEMENTED or a missing case fail. INFORMATIONAL is accepted only
for the cases where the suite can only inform (7.1.6: close after a large message, 7.13.x: codes
5000 and 65536). Prints one summary line: `autobahn: N passed, M failed`."""
import json
import os
import sys

INFORMATIONAL_ONLY = {"7.1.6", "7.13.1", "7.13.2"}
# Groups 1-7 and 10: 247 cases; other selections say how many they expect (AB_EXPECTED).
EXPECTED_CASES = int(os.environ.get("AB_EXPECTED", "247"))

report = json.load(open(sys.argv[1]))
cases = {}
for agent in report.values():
    cases.update(agent)
bad = []
for cid, r in sorted(cases.items()):
    allowed = {"OK", "INFORMATIONAL"} if cid in INFORMATIONAL_ONLY else {"OK"}
    if r["behavior"] not in allowed or r["behaviorClose"] not in allowed:
        bad.append("%s behavior=%s close=%s" % (cid, r["behavior"], r["behaviorClose"]))
missing = EXPECTED_CASES - len(cases)
for line in bad:
    print("  FAIL " + line)
if missing:
    print("  %d cases missing from the report (expected %d)" % (missing, EXPECTED_CASES))
print("autobahn: %d passed, %d failed" % (len(cases) - len(bad), len(bad) + max(0, missing)))
sys.exit(1 if bad or missing else 0)
