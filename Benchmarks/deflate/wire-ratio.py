"""Bytes on the wire for chat JSON, permessage-deflate with room streams vs each message compressed alone vs
plain (issue 19: "bytes on the wire for a typical chat JSON shrink by >= 3x").

  python3 Benchmarks/deflate/wire-ratio.py [--bin .build/debug/switchboard] [--messages 500] [--corpus FILE]

A fresh node per mode; in one room: a member that offers what Chromium offers
(`permessage-deflate; client_max_window_bits`), one that asks for `server_no_context_takeover` (each message
compressed alone, as before room streams), and a plain one. A plain publisher sends --messages chat messages:
{"id", "user": {"id", "name"}, "ts", "text"} from five users, each text a different sentence of --corpus
(default: the comment prose of /etc/redis/redis.conf, else the GPL-3 text; sentences shuffled, none repeated),
so the ratio comes from what repeats in real chat traffic (keys, user names, the envelope), not from repeated
text. Members inflate as RFC 7692 §7.2.2 says and check every message; counted: frame bytes received (headers
included, TCP/IP not) against the same messages as plain frames. Sizes are exact, so any machine will do.
"""
import argparse, json, os, random, re, socket, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import wsraw

def sentences(path):
    text = open(path, errors="ignore").read()
    if path.endswith(".conf"): text = "\n".join(l.lstrip("# ") for l in text.splitlines() if l.startswith("#"))
    out = []
    for s in re.split(r"(?<=[.!?])\s+", text):
        s = re.sub(r"\s+", " ", s.strip())
        if 30 < len(s) < 200 and s not in out: out.append(s)
    return out

USERS = [("u_48213", "Alice Martin"), ("u_10077", "Priya Raman"), ("u_55120", "Tomás Okafor"), ("u_20931", "Mei Chen"), ("u_77410", "Jonas Berg")]

def run(binary, texts, room_contexts):
    port, admin = wsraw.free_port(), wsraw.free_port()
    node = subprocess.Popen([binary, "--port", str(port), "--admin-port", str(admin), "--threads", "1", "--log-level", "warn",
                             "--max-frame-rate", "0", "--deflate-room-contexts", str(room_contexts)], stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try: socket.create_connection(("127.0.0.1", port)).close(); break
            except OSError: time.sleep(0.05)
        members = {"chromium offer": wsraw.WS(port, deflate="permessage-deflate; client_max_window_bits"),
                   "server_no_context_takeover": wsraw.WS(port, deflate="permessage-deflate; server_no_context_takeover"),
                   "plain": wsraw.WS(port)}
        pub = wsraw.WS(port)
        for ws in list(members.values()) + [pub]: json.loads(ws.recv())          # hello
        for ws in members.values():
            ws.send('{"op":"join","room":"chat"}')
            while json.loads(ws.recv()).get("op") != "joined": pass
        for ws in members.values(): ws.wire_bytes = ws.message_bytes = ws.compressed = 0
        sent = []
        for i, text in enumerate(texts):
            u = USERS[i % len(USERS)]
            data = {"id": "01JE4Q%06dK7X2M9" % i, "user": {"id": u[0], "name": u[1]}, "ts": 1764800000000 + i * 3170, "text": text}
            sent.append(data)
            pub.send(json.dumps({"op": "publish", "room": "chat", "data": data}, ensure_ascii=False))
        rows = {}
        for name, ws in members.items():
            got = []
            while len(got) < len(sent):
                m = json.loads(ws.recv())
                if m.get("op") == "message": got.append(m["data"])
            if got != sent: raise SystemExit(f"{name}: messages differ")
            rows[name] = (ws.message_bytes, ws.wire_bytes, ws.compressed, ws.extension)
        return rows
    finally:
        node.terminate(); node.wait()

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=".build/debug/switchboard")
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--corpus", default="/etc/redis/redis.conf" if os.path.exists("/etc/redis/redis.conf") else "/usr/share/common-licenses/GPL-3")
    a = ap.parse_args()
    texts = sentences(a.corpus)
    random.Random(1).shuffle(texts)
    texts = texts[:a.messages]
    print(f"{len(texts)} chat messages, texts from {a.corpus}, mean text {sum(map(len, texts)) // len(texts)} B")
    for contexts in (256, 0):
        print(f"--deflate-room-contexts {contexts}:")
        for name, (plain, wire, compressed, ext) in run(a.bin, texts, contexts).items():
            print(f"  {name:28} plain {plain:7} B  wire {wire:7} B  ratio {plain / wire:4.2f}x  compressed {compressed}  ({ext})")
