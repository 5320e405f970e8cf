// Drives clients/js/switchboard.js under Node against a real gateway: `node test.mjs PORT`.
// Uses Debian's node-ws as the WebSocket implementation (browsers have one built in).
import { createRequire } from "module";
import { Switchboard, compareOffsets, backoffDelay } from "./switchboard.js";
const require = createRequire(import.meta.url);
const WebSocket = require(process.env.WS_MODULE || "/usr/share/nodejs/ws");
const port = process.argv[2];
const url = `ws://127.0.0.1:${port}/ws`;
const fail = (msg) => { console.log("FAIL " + msg); process.exit(1); };
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

if (compareOffsets("ab:0-2", "ab:0-10") !== -1 || compareOffsets("ab:0-2", "cd:0-1") !== null) fail("compareOffsets");
for (let i = 0; i < 10; i++) if (backoffDelay(i, 250, 30000) > Math.min(30000, 250 * 2 ** i)) fail("backoff cap");

const got = [];
const reader = new Switchboard(url, { WebSocket, backoffBaseMs: 50 });
reader.on("message", (m) => got.push(m.data));
const joined = new Promise((r) => reader.on("joined", r));
reader.join("js-room");
await joined;
const writer = new Switchboard(url, { WebSocket });
await new Promise((r) => writer.on("open", r));
for (let i = 0; i < 5; i++) await writer.publish("js-room", { n: i });
await wait(300);
if (got.length !== 5 || got.some((d, i) => d.n !== i)) fail("first five: " + JSON.stringify(got));

// Force a reconnect: the server closes the reader (1012 would come from a drain; a 1001 here).
const reconnected = new Promise((r) => reader.on("reconnecting", r));
reader.ws.terminate();
await reconnected;
for (let i = 5; i < 10; i++) await writer.publish("js-room", { n: i });
await wait(1500);
const ns = got.map((d) => d.n);
if (ns.length !== 10 || ns.some((n, i) => n !== i)) fail("after reconnect, every message once in order: " + JSON.stringify(ns));
reader.close();
writer.close();
console.log("js client: 2 passed, 0 failed");
process.exit(0);
