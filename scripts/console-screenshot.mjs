// Drives headless Chromium over the DevTools protocol (Debian's node-ws as the WebSocket): logs in to the
// console with the API key through its own form, opens `/console#room=ROOM`, waits for live data, checks
// it is there, publishes through the page's form (CSRF token and all) and sees the message come back, and
// saves a PNG. Used by scripts/console-screenshot.sh and Tests/GatewayTests/ConsoleTests.swift.
//   node console-screenshot.mjs DEVTOOLS_PORT ADMIN_URL API_KEY ROOM OUT.png [WAIT_MS]
// Prints one JSON line with what the page showed; exits 1 when the page shows no live data.
import { createRequire } from "module";
import { writeFileSync } from "fs";
const require = createRequire(import.meta.url);
const WebSocket = require(process.env.WS_MODULE || "/usr/share/nodejs/ws");
const [devtools, admin, key, room, out, waitArg] = process.argv.slice(2);
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const fail = (msg) => { console.log(JSON.stringify({ ok: false, error: msg })); process.exit(1); };
setTimeout(() => fail("timed out"), 60000).unref();

let targets = [];
for (let i = 0; i < 100 && !targets.some((t) => t.type === "page"); i++) {
  try { targets = await (await fetch(`http://127.0.0.1:${devtools}/json/list`)).json(); } catch { await wait(100); }
}
const page = targets.find((t) => t.type === "page");
if (!page) fail("no page target");
const ws = new WebSocket(page.webSocketDebuggerUrl);
await new Promise((r, j) => { ws.on("open", r); ws.on("error", j); });
let nextID = 1;
const waiting = new Map();
ws.on("message", (m) => { const msg = JSON.parse(m); if (waiting.has(msg.id)) { waiting.get(msg.id)(msg); waiting.delete(msg.id); } });
const cdp = (method, params = {}) => new Promise((r) => { const id = nextID++; waiting.set(id, r); ws.send(JSON.stringify({ id, method, params })); });
const evaluate = async (expression) => (await cdp("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true })).result?.result?.value;

await cdp("Emulation.setDeviceMetricsOverride", { width: 1280, height: 860, deviceScaleFactor: 1, mobile: false });
await cdp("Page.navigate", { url: `${admin}/console` });
await wait(1500);
const loginShown = await evaluate(`!!document.getElementById("login")`);
if (!loginShown) fail("no login form at /console");
await evaluate(`document.getElementById("key").value = ${JSON.stringify(key)}; document.getElementById("login").requestSubmit(); true`);
await wait(1500);
await cdp("Page.navigate", { url: `${admin}/console#room=${encodeURIComponent(room)}` });
await wait(Number(waitArg || 9000));
// The publish box: a POST with the session's CSRF token, then the message arrives in the tailed room.
await evaluate(`document.getElementById("data").value = '{"text": "hello from the console"}'; document.getElementById("publish").requestSubmit(); true`);
await wait(1500);
const shown = await evaluate(`({
  login: !!document.getElementById("login"),
  node: document.getElementById("node")?.textContent,
  state: document.getElementById("state")?.textContent,
  connections: document.getElementById("connections")?.textContent,
  rooms: document.getElementById("rooms")?.textContent,
  messages: document.getElementById("messages")?.children.length,
  presence: document.getElementById("presence")?.textContent,
  tail: document.getElementById("tail-state")?.textContent,
  published: document.getElementById("publish-result")?.textContent,
  ownMessageShown: [...document.querySelectorAll("#messages li")].some((li) => li.textContent.includes("hello from the console")),
})`);
const shot = await cdp("Page.captureScreenshot", { format: "png" });
if (out) writeFileSync(out, Buffer.from(shot.result.data, "base64"));
ws.close();
const ok = shown && !shown.login && Number(shown.connections) > 0 && shown.messages > 0 && /^live/.test(shown.tail || "")
  && /^stored at /.test(shown.published || "") && shown.ownMessageShown;
console.log(JSON.stringify({ ok, ...shown }));
process.exit(ok ? 0 : 1);
