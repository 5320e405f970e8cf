// Node `ws` peer for Benchmarks/compare.sh: the subset of Switchboard's room protocol the bench drives
// (docs/protocol.md): `hello` on open, `join` -> `joined`, `publish` -> `ack` (when it has an id) and the
// `message` to every member of the room, in one process on one core. No history, no auth, no limits.
// usage: NODE_PATH=/usr/share/nodejs node ws-room-server.js PORT
'use strict';
const WebSocket = require('ws');
const port = Number(process.argv[2]);
const wss = new WebSocket.Server({ host: '127.0.0.1', port, perMessageDeflate: false, clientTracking: false });
const rooms = new Map();
let offset = 0;
let sessions = 0;
wss.on('connection', (ws) => {
  ws.joined = new Set();
  ws.send(JSON.stringify({ op: 'hello', node: 'node-ws', session: (++sessions).toString(16), heartbeat: 25 }));
  ws.on('message', (raw) => {
    let r;
    try { r = JSON.parse(raw); } catch (e) { return; }
    if (r.op === 'join' && typeof r.room === 'string') {
      let members = rooms.get(r.room);
      if (!members) rooms.set(r.room, (members = new Set()));
      members.add(ws);
      ws.joined.add(r.room);
      ws.send(JSON.stringify({ op: 'joined', room: r.room, offset: String(offset), recovered: false }));
    } else if (r.op === 'publish' && typeof r.room === 'string') {
      const o = String(++offset);
      if (r.id !== undefined) ws.send(JSON.stringify({ op: 'ack', id: r.id, offset: o }));
      // Serialized once, sent to every member (as Switchboard does).
      const frame = JSON.stringify({ op: 'message', room: r.room, offset: o, data: r.data });
      const members = rooms.get(r.room);
      if (members) for (const m of members) m.send(frame);
    }
  });
  ws.on('close', () => {
    for (const name of ws.joined) {
      const members = rooms.get(name);
      if (members) { members.delete(ws); if (members.size === 0) rooms.delete(name); }
    }
  });
});
wss.on('listening', () => console.log(`node-ws listening on 127.0.0.1:${port}`));
