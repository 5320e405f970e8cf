// Compiled by `tsc --noEmit -p clients/js` only: every declaration of switchboard.d.ts in use, so a
// declaration that drifts from how the module is called fails the check.
import { Switchboard, compareOffsets, backoffDelay, type Offset, type PresenceEvent } from "./switchboard.js";

const sb = new Switchboard(["ws://127.0.0.1:1/ws", "ws://127.0.0.1:2/ws"], {
  getToken: async (reason) => (reason === "connect" ? "t" : null),
  backoffBaseMs: 100,
  backoffCapMs: 1000,
  window: globalThis,
  document,
  navigator,
});
sb.on("message", (m) => { const o: Offset = m.offset; void o; void m.data; })
  .on("joined", (j) => { const r: boolean = j.recovered; void r; })
  .on("hello", (h) => void h.node)
  .on("close", (c) => void c.code)
  .on("reconnecting", (r) => void r.delayMs)
  .on("token_expiring", (t) => void t.expires_in_ms)
  .on("open", () => {});
sb.join("lobby");
sb.leave("lobby");
const ack: Promise<Offset> = sb.publish("lobby", { text: "hi", n: [1, null, true] });
const presence: Promise<PresenceEvent> = sb.presence("lobby");
void ack; void presence;
const c: -1 | 0 | 1 | null = compareOffsets("a:1-0", "a:1-1");
const d: number = backoffDelay(3, 250, 30000, Math.random);
void c; void d; void sb.connected; void sb.url; void sb.rooms;
sb.close();
// @ts-expect-error publish needs JSON data
sb.publish("lobby", () => 1);
