"""Connects a real python-socketio client (Debian python3-socketio) to URL and does connect-with-auth,
emits with and without acks, a binary emit, and answers the server's `ask`:

    /usr/bin/python3 client.py http://127.0.0.1:PORT websocket|polling
"""
import sys, time
import socketio

url, transport = sys.argv[1], sys.argv[2]
sio = socketio.Client()
acks = []


@sio.on("ask", namespace="/chat")
def ask(*args):
    return "yes"


sio.connect(url, transports=[transport], namespaces=["/", "/chat"], auth={"token": "good"}, wait_timeout=5)
sio.emit("echo", "a", callback=lambda *a: acks.append(("echo", a)))
sio.emit("echo", {"x": 1}, namespace="/chat", callback=lambda *a: acks.append(("echo /chat", a)))
sio.emit("echo", "noack")
sio.emit("upload", b"\x01\x02\x03", callback=lambda *a: acks.append(("upload", a)))
time.sleep(1.5)
print("acks:", acks)
sio.disconnect()
