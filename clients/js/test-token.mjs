// Token lifecycle of clients/js/switchboard.js under Node: `node test-token.mjs PORT SECRET` against a
// gateway started with `--jwt-secret SECRET --jwt-leeway 0s --token-expiring-notice 1s`. A provider hands
// out 3-second HS256 tokens; the session must outlive several of them with every message once, in order.
import { createRequire } from "module";
import { createHmac } from "crypto";
import { Switchboard } from "./switchboard.js";
const require = createRequire(import.meta.url);
const WebSocket = require(process.env.WS_MODULE || "/usr/share/nodejs/ws");
const [port, secret] = process.argv.slice(2);
const url = `ws://127.0.0.1:${port}/ws`;
const fail = (msg) => { console.log("FAIL " + msg); process.exit(1); };
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const b64 = (s) => Buffer.from(s).toString("base64url");

function token(lifetimeSeconds) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64(JSON.stringify({ sub: "js", rooms: ["js-token"], publish: ["js-token"], iat: now, exp: now + lifetimeSeconds }));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

const reasons = [];
const closes = [];
const got = [];
const reader = new Switchboard(url, { WebSocket, backoffBaseMs: 50, getToken: async (reason) => { reasons.push(reason); return token(3); } });
reader.on("message", (m) => got.push(m.data.n));
reader.on("close", (e) => closes.push(e.code));
const joined = new Promise((r) => reader.on("joined", r));
reader.join("js-token");
await joined;
const writer = new Switchboard(url, { WebSocket, token: token(3600) });
await new Promise((r) => writer.on("hello", r));
for (let i = 0; i < 40; i++) { await writer.publish("js-token", { n: i }); await wait(150); }
await wait(800);
if (got.length !== 40 || got.some((n, i) => n !== i)) fail("every message once, in order: " + JSON.stringify(got));
if (closes.length) fail("the session was closed: " + JSON.stringify(closes));
if (reasons[0] !== "connect" || reasons.filter((r) => r === "renew").length < 2) fail("renewals: " + JSON.stringify(reasons));
reader.close();
writer.close();
console.log("js token lifecycle: 1 passed, 0 failed");
process.exit(0);
