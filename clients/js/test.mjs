// Drives clients/js/switchboard.js under Node against a real gateway: `node test.mjs PORT`.
// Uses Debian's node-ws as the WebSocket implementation (browsers have one built in).
import { createRequire } from "module";
import { readFileSync } from "fs";
import { gzipSync } from "zlib";
import * as module from "./switchboard.js";
import { Switchboard, compareOffsets, backoffDelay } from "./switchboard.js";
const require = createRequire(import.meta.url);
const WebSocket = require(process.env.WS_MODULE || "/usr/share/nodejs/ws");
const port = process.argv[2];
const url = `ws://127.0.0.1:${port}/ws`;
const fail = (msg) => { console.log("FAIL " + msg); process.exit(1); };
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

if (compareOffsets("ab:0-2", "ab:0-10") !== -1 || compareOffsets("ab:0-2", "cd:0-1") !== null) fail("compareOffsets");
for (let i = 0; i < 10; i++) if (backoffDelay(i, 250, 30000) > Math.min(30000, 250 * 2 ** i)) fail("backoff cap");
// Full jitter: the whole range [0, ceiling) is used, not just its upper half.
if (backoffDelay(3, 250, 30000, () => 0) !== 0 || backoffDelay(3, 250, 30000, () => 0.999) !== 1998) fail("full jitter range");
if (backoffDelay(2000, 250, 30000, () => 0.5) !== 15000) fail("backoff with a huge attempt");

// The declarations name exactly what the module exports, and every method of the class.
const dts = readFileSync(new URL("./switchboard.d.ts", import.meta.url), "utf8");
const declared = [...dts.matchAll(/^export declare (?:function|class|const) (\w+)/gm)].map((m) => m[1]).sort();
if (JSON.stringify(declared) !== JSON.stringify(Object.keys(module).sort())) fail(`exports ${Object.keys(module)} vs declared ${declared}`);
const classBody = dts.slice(dts.indexOf("export declare class Switchboard"));
const methods = ["on", "off", "join", "leave", "publish", "presence", "close"];
for (const name of methods) {
  if (typeof Switchboard.prototype[name] !== "function") fail("no method " + name);
  if (!new RegExp(`\\n  ${name}(<[^>]*>)?\\(`).test(classBody)) fail("not declared: " + name);
}
for (const name of ["url", "connected"]) if (!Object.getOwnPropertyDescriptor(Switchboard.prototype, name)?.get) fail("no getter " + name);

// Size budget: the module as shipped, comments included (no minifier in the loop), gzip -9: 5 KiB. Minified
// by esbuild 0.17 (Debian) it is about 4.9 KB, 1.9 KB gzipped (docs/browser.md).
const gz = gzipSync(readFileSync(new URL("./switchboard.js", import.meta.url)), { level: 9 }).length;
if (gz > 5120) fail(`switchboard.js is ${gz} B gzipped, over the 5 KiB budget`);

const got = [];
const reader = new Switchboard(url, { WebSocket, backoffBaseMs: 50 });
reader.on("message", (m) => got.push(m.data));
const joined = new Promise((r) => reader.on("joined", r));
reader.join("js-room");
await joined;
const writer = new Switchboard(url, { WebSocket });
await new Promise((r) => writer.on("open", r));
for (let i = 0; i < 5; i++) await writer.publish("js-room", { n: i });
const presence = await writer.presence("js-room");
if (presence.op !== "presence" || presence.count !== 1) fail("presence: " + JSON.stringify(presence));
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

// The seam: a replayed message at or below the room's last offset is dropped; a later one, or one of another
// epoch (history reset: offsets no longer compare), is delivered.
const last = reader.rooms.get("js-room");
const [epoch, rest] = last.split(":");
const [ms, seq] = rest.split("-");
const feed = (offset, n) => reader.receive(JSON.stringify({ op: "message", room: "js-room", offset, data: { n } }));
feed(last, 100);
feed(`${epoch}:${ms}-${BigInt(seq) - 1n}`, 101);
feed(`${epoch}:${BigInt(ms) - 1n}-${BigInt(seq) + 5n}`, 102);
if (got.length !== 10) fail("a message at or below the last offset was delivered again: " + JSON.stringify(got.slice(10)));
feed(`${epoch}:${ms}-${BigInt(seq) + 1n}`, 103);
feed(`${epoch === "0" ? "1" : "0"}:1-0`, 104);
if (JSON.stringify(got.slice(10).map((d) => d.n)) !== "[103,104]") fail("later or other-epoch messages: " + JSON.stringify(got.slice(10)));

// Offline: the retry (due at once here: random() is 0) waits for the network instead of failing; `online`
// connects at once although the offline wait is backoffCapMs (60 s).
const page = new EventTarget();
const nav = { onLine: true };
const slow = new Switchboard(url, { WebSocket, window: page, navigator: nav, backoffBaseMs: 60000, backoffCapMs: 60000 });
await new Promise((r) => slow.on("hello", r));
const slowDelay = new Promise((r) => slow.on("reconnecting", (e) => r(e.delayMs)));
nav.onLine = false;
const random = Math.random;
Math.random = () => 0;
slow.ws.terminate();
const waited = await slowDelay;
Math.random = random;
page.dispatchEvent(new Event("visibilitychange"));   // offline: nothing happens
await wait(300);
if (slow.connected) fail("connected while offline");
const started = Date.now();
nav.onLine = true;
page.dispatchEvent(new Event("online"));
await new Promise((r) => slow.on("hello", r));
if (Date.now() - started > 2000) fail(`online reconnect took ${Date.now() - started} ms (backoff was ${waited} ms)`);
slow.close();

reader.close();
writer.close();
console.log(`js client: 5 passed, 0 failed (switchboard.js ${gz} B gzipped)`);
process.exit(0);
