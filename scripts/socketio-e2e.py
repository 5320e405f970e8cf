#!/usr/bin/python3
"""End-to-end scenarios of the Socket.IO endpoint with the real python-socketio client (Debian's
python3-socketio 5.7.2) and, for the mixed room, a native room-protocol client (python3-websocket).

Run by Tests/GatewayTests/SocketIO*Tests.swift against the real gateway binary; prints one JSON object
with what each client saw, which the Swift test asserts on. Every wait is bounded.

  socketio-e2e.py basic   --url http://127.0.0.1:PORT --token T --bad-token B [--transport websocket|polling|polling-only]
  socketio-e2e.py cluster --url http://127.0.0.1:LBPORT --token T --admins P1,P2 --pids PID1,PID2 --api-key K

python-socketio 5.7.2 predates connection-state recovery (socket.io-client 4.6); `RecoveringClient`
does what socket.io-client does: keeps the `pid` of the CONNECT answer and the last string argument of
the last event, and sends both in the next CONNECT's auth object.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.request

import socketio
import websocket

PATH = "/socket.io/"
DEBUG = {}   # what a failed wait reports besides its name


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    # os._exit: python-socketio's client threads would keep a plain exit waiting.
    print(json.dumps({"error": "timed out waiting for " + what, "state": DEBUG}, default=str), flush=True)
    os._exit(3)


class RecoveringClient:
    """A python-socketio client that records room messages and recovers its session like socket.io-client."""

    def __init__(self, url, token, transports):
        self.pid = None
        self.offset = None
        self.messages = []          # (room, data, offset) in arrival order
        self.connects = 0
        self.recovered = []         # per CONNECT: whether the answer kept our pid
        self.errors = []
        self.lock = threading.Lock()
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=0.5,
                                   randomization_factor=0.05)
        original = self.sio._handle_connect

        def handle_connect(namespace, data):
            pid = (data or {}).get("pid")
            with self.lock:
                self.recovered.append(bool(pid) and pid == self.pid)
                self.pid = pid
                self.connects += 1
            original(namespace, data)
        self.sio._handle_connect = handle_connect

        @self.sio.on("message")
        def on_message(room, data, offset):
            with self.lock:
                self.messages.append((room, data, offset))
                self.offset = offset

        @self.sio.on("connect_error")
        def on_error(data):
            self.errors.append(data)

        def auth():
            a = {"token": token}
            if self.pid:
                a["pid"] = self.pid
                if self.offset:
                    a["offset"] = self.offset
            return a
        self.sio.connect(url, auth=auth, transports=transports, socketio_path=PATH, wait_timeout=5)

    def call(self, *args):
        return self.sio.call(args[0], args[1:] if len(args) > 2 else args[1], timeout=5)

    def count(self):
        with self.lock:
            return len(self.messages)


def native_client(url, token):
    """A room-protocol client on /ws: returns (socket, received messages list)."""
    ws = websocket.create_connection(url.replace("http://", "ws://") + "/ws?token=" + token, timeout=5)
    hello = json.loads(ws.recv())
    assert hello["op"] == "hello", hello
    got = []

    def reader():
        while True:
            try:
                m = json.loads(ws.recv())
            except Exception:
                return
            got.append(m)
    threading.Thread(target=reader, daemon=True).start()
    return ws, got


def basic(a):
    transports = {"websocket": ["websocket"], "polling": ["polling", "websocket"], "polling-only": ["polling"]}[a.transport]
    out = {}
    c = RecoveringClient(a.url, a.token, transports)
    out["transport"] = c.sio.transport()
    out["join"] = c.call("join", "lobby")
    out["publish"] = c.call("publish", "lobby", {"text": "hi"})
    wait_for(lambda: c.count() >= 1, 5, "the room message")
    out["message"] = c.messages[0]
    out["other_event"] = c.call("shout", "x")
    out["forbidden_join"] = c.call("join", "secret")
    out["bad_join"] = c.call("join", 42)
    out["leave"] = c.call("leave", "lobby")
    out["leave_again"] = c.call("leave", "lobby")
    out["pid"] = c.pid
    c.sio.disconnect()

    bad = socketio.Client(reconnection=False)
    errors = []
    bad.on("connect_error", lambda data: errors.append(data))
    try:
        bad.connect(a.url, auth={"token": a.bad_token}, transports=transports, socketio_path=PATH, wait_timeout=5)
        out["bad_token"] = "connected"
        bad.disconnect()
    except socketio.exceptions.ConnectionError as e:
        out["bad_token"] = str(e)
    out["bad_token_errors"] = errors
    print(json.dumps(out))


def metric(admin, name):
    body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % admin, timeout=3).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ")[1])
    return 0.0


def sessions(admin):
    return int(metric(admin, 'switchboard_protocol_sessions_open{protocol="socketio"}'))


def cluster(a):
    admins = a.admins.split(",")
    pids = [int(p) for p in a.pids.split(",")]
    out = {}
    # Two Socket.IO clients through HAProxy. The first opens with long-polling and upgrades (python-socketio's
    # default) while both nodes are empty: leastconn alone would spread its GETs, POSTs and the upgrade
    # over both nodes (each request is a new connection), so it works only through the shipped stickiness
    # cookie. The second uses the WebSocket only, and leastconn puts it on the other node.
    first = RecoveringClient(a.url, a.token, ["polling", "websocket"])
    wait_for(lambda: sum(sessions(p) for p in admins) == 1, 5, "the first session")
    first_node = next(i for i, p in enumerate(admins) if sessions(p) == 1)
    wait_for(lambda: first.sio.transport() == "websocket", 5, "the first client's upgrade")
    second = RecoveringClient(a.url, a.token, ["websocket"])
    wait_for(lambda: sum(sessions(p) for p in admins) == 2, 5, "the second session")
    out["sessions_per_node"] = [sessions(p) for p in admins]
    for c in (first, second):
        c.call("join", "lobby")
    native, native_got = native_client(a.url, a.token)
    native.send(json.dumps({"op": "join", "room": "lobby"}))
    wait_for(lambda: any(m.get("op") == "joined" for m in native_got), 5, "the native join")

    # Emit on one node, receive on the other; acks carry the offset; one order for everyone.
    acks = []
    for i in range(10):
        sender = first if i % 2 == 0 else second
        acks.append(sender.call("publish", "lobby", {"n": i})["offset"])
        native.send(json.dumps({"op": "publish", "room": "lobby", "data": {"native": i}}))
    wait_for(lambda: first.count() >= 20 and second.count() >= 20 and
             sum(1 for m in native_got if m.get("op") == "message") >= 20, 5, "20 messages everywhere")
    out["acks"] = acks
    out["first"] = [[m[2], m[1]] for m in first.messages]
    out["second"] = [[m[2], m[1]] for m in second.messages]
    out["native"] = [[m["offset"], m["data"]] for m in native_got if m.get("op") == "message"]

    # SIGTERM the node the first client is on while a backend publishes through the other node's API:
    # the client reconnects through HAProxy to the other node and recovers what it missed.
    # Drain the node of the first client (long-polling, then upgraded): it must come back on the other node
    # through HAProxy (its stickiness cookie names a server that is gone: redispatched) and recover.
    victim, survivor = first_node, 1 - first_node
    before = {id(c): c.count() for c in (first, second)}
    connects_before = {id(c): c.connects for c in (first, second)}
    published = []
    stop = threading.Event()

    def publisher():
        n = 0
        while not stop.is_set() and n < 40:
            req = urllib.request.Request("http://127.0.0.1:%s/api/publish" % admins[survivor], method="POST",
                                         data=json.dumps({"room": "lobby", "data": {"api": n}}).encode(),
                                         headers={"Authorization": "Bearer " + a.api_key})
            try:
                body = json.loads(urllib.request.urlopen(req, timeout=3).read().decode())
                published.append(body["offset"])
            except Exception as e:  # noqa: BLE001 - reported, not hidden
                published.append("error: %s" % e)
            n += 1
            time.sleep(0.05)
    t = threading.Thread(target=publisher)
    t.start()
    time.sleep(0.3)
    os.kill(pids[victim], signal.SIGTERM)
    DEBUG.update(first=first.__dict__, second=second.__dict__, published=published)
    t.join(timeout=30)
    stop.set()
    def moved():
        return [c for c in (first, second) if c.connects > connects_before[id(c)]]
    wait_for(lambda: len(moved()) == 1 and moved()[0].count() >= before[id(moved()[0])] + 40, 15, "the moved client's 40 API messages")
    time.sleep(0.3)   # anything duplicated would arrive now
    m = moved()[0]
    out["moved"] = len(moved())
    out["moved_is_first"] = m is first
    out["victim"] = victim
    out["moved_recovered"] = m.recovered
    out["published"] = published
    out["moved_after"] = [x[2] for x in m.messages[before[id(m)]:]]
    stayed = second if m is first else first
    out["stayed_after"] = [x[2] for x in stayed.messages[before[id(stayed)]:]]
    out["sessions_on_survivor"] = sessions(admins[survivor])
    for c in (first, second):
        c.sio.disconnect()
    native.close()
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["basic", "cluster"])
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--bad-token", default="not-a-token")
    p.add_argument("--transport", default="websocket")
    p.add_argument("--admins", default="")
    p.add_argument("--pids", default="")
    p.add_argument("--api-key", default="")
    a = p.parse_args()
    {"basic": basic, "cluster": cluster}[a.scenario](a)
    os._exit(0)   # python-socketio's background threads may linger


if __name__ == "__main__":
    main()
