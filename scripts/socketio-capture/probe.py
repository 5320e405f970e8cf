"""Sends C35/C36 steps as raw polling requests to a server on 127.0.0.1:PORT and prints what comes back:

    /usr/bin/python3 probe.py PORT
"""
import sys
import urllib.request, json
PORT = int(sys.argv[1])
base = f"http://127.0.0.1:{PORT}/socket.io/?EIO=4&transport=polling"
def get(url):
    with urllib.request.urlopen(url, timeout=5) as r: return r.read()
def post(url, body):
    req = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r: return r.read()
hs = get(base); print("open:", hs)
sid = json.loads(hs[1:])["sid"]; u = base + "&sid=" + sid
for body in [b'40{"token":"good"}', b'40/chat,{"token":"good"}', b'40/nope,{}', b'421["echo","a"]\x1e420["echo","zero"]\x1e42/chat,7["echo","c"]\x1e42["echo","noack"]\x1e425["echo","a","extra",{"x":1}]']:
    print("POST", body, "->", post(u, body)); print("  GET ->", get(u))
hs2 = get(base); sid2 = json.loads(hs2[1:])["sid"]; u2 = base + "&sid=" + sid2
print("POST bad ->", post(u2, b'40/chat,{"token":"bad"}')); print("  GET ->", get(u2))
hs3 = get(base); sid3 = json.loads(hs3[1:])["sid"]; u3 = base + "&sid=" + sid3
try:
    print("EIO=3 ->", get(f"http://127.0.0.1:{PORT}/socket.io/?EIO=3&transport=polling"))
except Exception as e: print("EIO=3 ->", e, getattr(e, "read", lambda: b"")())
try:
    print("POST 44 ->", post(u3, b'44{"message":"x"}')); print("  GET ->", get(u3))
except Exception as e: print("  ->", e, getattr(e, "read", lambda: b"")())
