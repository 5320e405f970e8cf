// The operator console (served by the admin port with `--console yes`; AdminServer+Console.swift).
// Reads /ready, /health and /metrics of this node, /console/api/* (the API, answered with the key the login
// proved) where the node serves them, and tails a room over WebSocket with the JS client. Writes go through
// /console/api/* with the session's CSRF token. Text from the network is only ever set as textContent.
import { Switchboard } from "/console/assets/switchboard.js";

const $ = (id) => document.getElementById(id);
const POINTS = 60;          // two minutes at one sample every 2 s
const sessionAnswer = await fetch("/console/session");
if (sessionAnswer.status === 401) location.reload();   // logged out elsewhere: the login page
const session = await sessionAnswer.json();
const post = (path, body) => fetch(path, {
  method: "POST",
  headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf },
  body: JSON.stringify(body),
});
const getJSON = async (path) => {
  try { const r = await fetch(path); return r.ok ? await r.json() : null; } catch { return null; }
};
// The server API's methods are POSTs of a JSON object (docs/api.md), read-only ones included.
const callAPI = async (method, body = {}) => {
  try { const r = await post("/console/api/" + method, body); return r.ok ? await r.json() : null; } catch { return null; }
};
const pill = (el, text, kind) => { el.textContent = text; el.className = "pill " + kind; };

$("node").textContent = "node " + session.node;
$("logout").addEventListener("click", async () => { await post("/console/logout", {}); location.reload(); });

// --- Metrics: gauges and a rate, kept for the last POINTS samples and drawn as SVG polylines.
const series = { connections: [], rooms: [], out: [], rss: [] };
let previous = null;

function parseMetrics(text) {
  const sums = new Map();   // family name (labels dropped) -> sum of its samples
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m) sums.set(m[1], (sums.get(m[1]) || 0) + Number(m[2]));
  }
  return sums;
}

function draw(id, values) {
  const svg = $(id);
  const max = Math.max(1, ...values) * 1.15;
  // Newest at the right edge, like a strip chart.
  const points = values.map((v, i) => `${((POINTS - values.length + i) * 300) / (POINTS - 1)},${58 - (v / max) * 54}`).join(" ");
  let line = svg.querySelector("polyline");
  if (!line) { line = document.createElementNS("http://www.w3.org/2000/svg", "polyline"); svg.appendChild(line); }
  line.setAttribute("points", points);
}

const push = (name, value) => { series[name].push(value); if (series[name].length > POINTS) series[name].shift(); };
const mib = (bytes) => (bytes / 1048576).toFixed(1) + " MiB";

async function pollMetrics() {
  let m;
  try { m = parseMetrics(await (await fetch("/metrics")).text()); } catch { return; }
  const now = performance.now();
  const out = m.get("switchboard_messages_out_total") || 0;
  const rate = previous ? Math.max(0, (out - previous.out) / ((now - previous.at) / 1000)) : null;
  previous = { out, at: now };
  push("connections", m.get("switchboard_connections_open") || 0);
  push("rooms", m.get("switchboard_rooms") || 0);
  if (rate !== null) push("out", rate);
  push("rss", m.get("switchboard_process_resident_memory_bytes") || 0);
  $("connections").textContent = series.connections.at(-1);
  $("rooms").textContent = series.rooms.at(-1);
  if (rate !== null) $("rate-out").textContent = rate.toFixed(rate < 10 ? 1 : 0);
  $("rss").textContent = mib(series.rss.at(-1));
  draw("chart-connections", series.connections);
  draw("chart-rooms", series.rooms);
  draw("chart-out", series.out);
  draw("chart-rss", series.rss);
}

// --- Node state, and the cluster's nodes when the node serves /api/info.
async function pollState() {
  const ready = await fetch("/ready").then((r) => r.json()).catch(() => null);   // 503 while draining, still JSON
  const health = await getJSON("/health");
  if (ready) {
    pill($("state"), ready.draining ? "draining (" + ready.drain_phase + ")" : ready.status, ready.draining ? "warn" : ready.status === "ready" ? "ok" : "bad");
    const bus = ready.dependencies && ready.dependencies.bus;
    if (bus) pill($("bus"), `bus ${bus.kind} ${bus.status}`, bus.status === "up" ? "ok" : "bad");
  }
  if (health) $("uptime").textContent = `${health.loops.length} event loops, ${health.status}`;
  const info = await callAPI("info");
  const rows = info && Array.isArray(info.nodes) ? info.nodes : [{ node: session.node, state: ready ? (ready.draining ? "draining" : ready.status) : "?", connections: series.connections.at(-1) }];
  $("nodes-note").textContent = info ? "" : "This node does not serve /api/info: only itself is listed.";
  const body = $("nodes").tBodies[0];
  body.replaceChildren(...rows.map((n) => {
    const tr = document.createElement("tr");
    const detail = { ...n };
    for (const k of ["node", "id", "state", "status", "connections"]) delete detail[k];
    for (const v of [n.node ?? n.id, n.state ?? n.status ?? (n.draining ? "draining" : ""), n.connections ?? "", Object.keys(detail).length ? JSON.stringify(detail) : ""]) {
      const td = document.createElement("td");
      td.textContent = String(v ?? "");
      tr.appendChild(td);
    }
    return tr;
  }));
  const rooms = await callAPI("rooms", { limit: 200 });
  const names = rooms && (Array.isArray(rooms) ? rooms : rooms.rooms);
  if (Array.isArray(names)) {
    $("room-list").replaceChildren(...names.map((r) => { const o = document.createElement("option"); o.value = typeof r === "string" ? r : r.room ?? r.name; return o; }));
  }
}

// --- Tail a room over WebSocket with the JS client.
// With authentication on, every connection (and every renewal) spends a one-use ticket from the admin port.
const ticket = async () => {
  const r = await post("/console/ticket", {});
  if (r.status === 401) location.reload();
  if (!r.ok) throw new Error(`ticket: ${r.status}`);
  return (await r.json()).token;
};
const sb = new Switchboard(session.ws, { backoffBaseMs: 500, backoffCapMs: 10000, ...(session.auth ? { getToken: ticket } : {}) });
let current = null;
sb.on("hello", (h) => { $("tail-state").textContent = `live via ${h.node}`; });
sb.on("close", (c) => {
  $("tail-state").textContent = c.code === 4001 || c.code === 4002 ? `refused (${c.code}): log in again` : `disconnected (${c.code}), reconnecting`;
});
sb.on("message", (m) => {
  if (m.room !== current) return;
  const li = document.createElement("li");
  const offset = document.createElement("span");
  offset.className = "offset";
  offset.textContent = m.offset;
  li.append(offset, JSON.stringify(m.data));
  const list = $("messages");
  list.prepend(li);
  while (list.children.length > 200) list.lastChild.remove();
});

function tail(room) {
  if (current) sb.leave(current);
  current = room;
  $("messages").replaceChildren();
  sb.join(room);
  location.hash = "room=" + encodeURIComponent(room);
  refreshPresence();
}

async function refreshPresence() {
  if (!current) return;
  try {
    const p = await sb.presence(current);
    pill($("presence"), `presence ${p.count} connection${p.count === 1 ? "" : "s"}, ${p.users} user${p.users === 1 ? "" : "s"}`, "ok");
  } catch (e) {
    pill($("presence"), "presence " + (e.code || "unavailable"), "warn");
  }
}

$("pick").addEventListener("submit", (e) => { e.preventDefault(); tail($("room").value.trim()); });
$("publish").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!current) { $("publish-result").textContent = "pick a room first"; return; }
  let data;
  try { data = JSON.parse($("data").value || "null"); } catch { $("publish-result").textContent = "not JSON"; return; }
  const r = await post("/console/api/publish", { room: current, data });
  const answer = await r.json().catch(() => ({}));
  $("publish-result").textContent = r.ok ? `stored at ${answer.offset}` : `${r.status}: ${answer.message || "failed"}`;
});

// `#room=NAME` tails NAME (a link to a room, and how scripts/console-screenshot.sh picks one).
function tailFromHash() {
  const m = /^#room=(.+)$/.exec(location.hash);
  const room = m && decodeURIComponent(m[1]);
  if (room && room !== current) { $("room").value = room; tail(room); }
}
window.addEventListener("hashchange", tailFromHash);
tailFromHash();
pollMetrics();
pollState();
setInterval(pollMetrics, 2000);
setInterval(pollState, 5000);
setInterval(refreshPresence, 3000);
