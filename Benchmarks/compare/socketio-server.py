"""python-socketio peer for Benchmarks/compare.sh (aiohttp, websocket transport only, one process).

A client that connects to the default namespace (Engine.IO v4 `0` open packet, then the client's `40`) with
`?room=R` in the URL joins room R and is sent the event `joined`; `publish` events are broadcast to the room.
usage: python socketio-server.py PORT
"""
import sys
from urllib.parse import parse_qs

import socketio
from aiohttp import web

sio = socketio.AsyncServer(async_mode="aiohttp", transports=["websocket"], cors_allowed_origins="*")
app = web.Application()
sio.attach(app)


@sio.event
async def connect(sid, environ, auth=None):
    room = parse_qs(environ.get("QUERY_STRING", "")).get("room", [None])[0]
    if room:
        await sio.enter_room(sid, room)
        await sio.emit("joined", room, to=sid)


@sio.event
async def publish(sid, data):
    await sio.emit("message", data, room=data.get("room") if isinstance(data, dict) else None)


if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
