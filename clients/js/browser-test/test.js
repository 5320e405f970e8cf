// Runs in headless Chromium (Tests/GatewayTests/BrowserTests.swift): the module against a live two-node
// cluster. ?a=ws://…(node a)&b=ws://…(node b)&room=… . Every step is recorded; the verdict is POSTed to
// /result (serve.py), and the title says it too.
import { Switchboard } from "../switchboard.js";

const q = new URLSearchParams(location.search);
const [a, b, room] = [q.get("a"), q.get("b"), q.get("room") || "browser"];
const steps = [];
const failures = [];
const post = (path, body) => fetch(path, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body) });
const log = (text) => { document.getElementById("log").textContent += text + "\n"; post("/log", text); };
const step = (name, ok, detail = "") => { (ok ? steps : failures).push(detail ? `${name}: ${detail}` : name); log(`${ok ? "ok" : "FAIL"} ${name} ${detail}`); };
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const once = (sb, event, test = () => true) => new Promise((r) => { const f = (v) => { if (test(v)) { sb.off(event, f); r(v); } }; sb.on(event, f); });
const within = (ms, p, what) => Promise.race([p, wait(ms).then(() => { throw new Error(`timed out after ${ms} ms: ${what}`); })]);
window.addEventListener("error", (e) => log("page error: " + e.message));
window.addEventListener("unhandledrejection", (e) => log("unhandled: " + e.reason));

// Chat-sized messages (over --deflate-threshold): Chromium negotiates permessage-deflate, so these arrive
// compressed with the room's stream (context takeover), between replies and replays compressed alone.
const names = ["Alice Martin", "Priya Raman", "Tomás Okafor"];
const chat = (n) => ({ n, user: { id: `u_${n % 3}`, name: names[n % 3] }, text: `message ${n}: the deploy finished, smoke tests are green and latency is back to normal` });
const garbled = [];

async function run() {
  step("module loaded in a browser", typeof WebSocket === "function" && typeof Switchboard === "function", navigator.userAgent);
  // The reader starts on node a and falls over to b; the writer publishes on b the whole time.
  const reader = new Switchboard([a, b], { backoffBaseMs: 100, backoffCapMs: 2000 });
  const got = [];
  const closes = [];
  const hellos = [];
  const joins = [];
  let reconnectOp = null;
  reader.on("message", (m) => { got.push(m.data.n); if (JSON.stringify(m.data) !== JSON.stringify(chat(m.data.n))) garbled.push(m.data); });
  reader.on("close", (c) => closes.push(c.code));
  reader.on("hello", (h) => hellos.push(h.node));
  reader.on("joined", (j) => joins.push(j));
  reader.on("reconnect", (r) => { reconnectOp = r; });
  await within(5000, once(reader, "hello"), "hello from node a");
  step("connected to node a", hellos[0] === "a", `hello.node=${hellos[0]}`);
  reader.join(room);
  await within(5000, once(reader, "joined"), "joined");
  step("joined", joins[0].room === room && joins[0].recovered === false);

  const writer = new Switchboard(b, { backoffBaseMs: 100 });
  await within(5000, once(writer, "hello"), "writer hello");
  for (let n = 0; n < 10; n++) await writer.publish(room, chat(n));
  const ownOffset = await reader.publish(room, chat(10));
  step("publish acknowledged", typeof ownOffset === "string" && ownOffset.includes(":"), ownOffset);
  await within(5000, (async () => { while (got.length < 11) await wait(20); })(), "first 11 messages");
  step("received across nodes", JSON.stringify(got) === JSON.stringify([...Array(11).keys()]), JSON.stringify(got));
  const p = await reader.presence(room);
  step("presence", p.count === 1, JSON.stringify(p));

  // SIGTERM node a, and keep publishing on b through the drain: the reader must resume on b with `since`.
  await post("/drain", "");
  const total = 60;
  for (let n = 11; n < total; n++) { await writer.publish(room, chat(n)); await wait(40); }
  await within(15000, (async () => { while (!got.includes(total - 1) || hellos.length < 2) await wait(50); })(), "messages after the drain");
  await wait(500);   // a duplicate, if any, would arrive now
  step("drain closed the connection with 1012", closes[0] === 1012, JSON.stringify(closes));
  step("server asked to reconnect after a delay", !!reconnectOp && reconnectOp.after_ms >= 0, JSON.stringify(reconnectOp));
  step("reconnected to node b", hellos[1] === "b", JSON.stringify(hellos));
  const rejoin = joins[joins.length - 1];
  step("resumed with since, recovered", joins.length === 2 && rejoin.recovered === true, JSON.stringify(rejoin));
  const expected = [...Array(total).keys()];
  step("every message once, in order (no gap, no duplicate)", JSON.stringify(got) === JSON.stringify(expected), JSON.stringify(got));
  const after = await reader.publish(room, chat(total));
  await within(5000, (async () => { while (!got.includes(total)) await wait(20); })(), "own message after the drain");
  step("publishes on the new node", got[got.length - 1] === total, after);
  step("every message intact (compressed with the room's stream)", garbled.length === 0, JSON.stringify(garbled.slice(0, 2)));
  reader.close();
  writer.close();

  // The page's own events, wired by default (window, document, navigator): with a 54 s backoff pending,
  // `online` and then `visibilitychange` (the page is visible) each reconnect at once.
  const probe = new Switchboard(b, { backoffBaseMs: 60000, backoffCapMs: 60000 });
  await within(5000, once(probe, "hello"), "probe hello");
  for (const [name, target] of [["online", window], ["visibilitychange", document]]) {
    const random = Math.random;
    Math.random = () => 0.9;
    const pending = once(probe, "reconnecting");
    probe.ws.close();
    const { delayMs } = await within(5000, pending, "reconnecting");
    Math.random = random;
    const started = performance.now();
    const back = once(probe, "hello");
    target.dispatchEvent(new Event(name));
    await within(3000, back, `hello after ${name}`);
    step(`${name} reconnects at once`, delayMs > 50000 && document.visibilityState === "visible", `${Math.round(performance.now() - started)} ms instead of ${delayMs} ms`);
  }
  probe.close();
}

run().catch((e) => step("run", false, String(e && e.stack || e))).finally(async () => {
  document.title = failures.length ? "switchboard browser test: FAIL" : "switchboard browser test: PASS";
  await post("/result", { passed: steps.length, failed: failures.length, steps, failures });
});
