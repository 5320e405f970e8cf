"""The python-socketio server (Debian python3-socketio 5.7.2, the seed architecture) on 127.0.0.1 over
HTTP long-polling (wsgiref, threading mode), with namespaces "/" and "/chat", an "echo" handler that acks
with its arguments, and auth that refuses {"token":"bad"}; for comparing its bytes with ours (probe.py).

    /usr/bin/python3 reference_server.py PORT
"""
import socketio, sys
from wsgiref.simple_server import make_server, WSGIRequestHandler
class Quiet(WSGIRequestHandler):
    def log_message(self, *a): pass
sio = socketio.Server(async_mode="threading", namespaces=["/", "/chat"])
@sio.event
def connect(sid, environ, auth):
    if auth and auth.get("token") == "bad":
        raise socketio.exceptions.ConnectionRefusedError("invalid token")
@sio.on("connect", namespace="/chat")
def connect_chat(sid, environ, auth):
    if auth and auth.get("token") == "bad":
        raise socketio.exceptions.ConnectionRefusedError("invalid token")
@sio.on("echo")
def echo(sid, *args): return args
@sio.on("echo", namespace="/chat")
def echo_chat(sid, *args): return args
app = socketio.WSGIApp(sio)
make_server("127.0.0.1", int(sys.argv[1]), app, handler_class=Quiet).serve_forever()
