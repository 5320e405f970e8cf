// Switchboard browser client: a plain ES module, no build step.
//
//   import { Switchboard } from "./switchboard.js";
//   const sb = new Switchboard("wss://example.com/ws", { token: "…" });
//   sb.on("message", ({ room, offset, data }) => …);
//   sb.join("lobby");
//   await sb.publish("lobby", { text: "hi" });      // resolves with the offset (ack)
//
// What a well-behaved client does (docs/protocol.md): reconnect with exponential backoff and full
// jitter, honour the server's `reconnect {after_ms}` before a drain close (1012), and rejoin every room
// with the last offset it received (`since`), so a rolling deploy loses and duplicates nothing.
// Messages at or below the last offset of a room are dropped (the resume seam), never delivered twice.
//
// Tokens: pass `getToken: async (reason) => token` (reason "connect" or "renew") and the client
// authenticates every connection with it, rejoins once `hello` confirms it, renews on `token_expiring`
// and `error token_expired`, and reconnects after a 4003 close instead of giving up.

const DEFAULTS = {
  token: null,            // sent as {"op":"auth"} right after open when set
  getToken: null,         // async (reason: "connect" | "renew") => token; wins over `token`
  backoffBaseMs: 250,     // first retry waits up to this long (full jitter)
  backoffCapMs: 30000,    // never longer than this
  WebSocket: globalThis.WebSocket, // inject one in Node (e.g. the `ws` package)
};

// Close codes after which reconnecting cannot help (docs/protocol.md "Close codes"); 4003 (token expired)
// is final only without a token provider to ask for a fresh one.
const FINAL_CLOSE_CODES = new Set([1002, 1003, 1007, 1008, 1009, 4001, 4002, 4003]);
const FINAL_WITH_PROVIDER = new Set([1002, 1003, 1007, 1008, 1009, 4001, 4002]);

/** Compares two offsets "{epoch}:{ms}-{seq}" of the same epoch; null when they cannot be compared. */
export function compareOffsets(a, b) {
  const pa = parseOffset(a), pb = parseOffset(b);
  if (!pa || !pb || pa.epoch !== pb.epoch) return null;
  if (pa.ms !== pb.ms) return pa.ms < pb.ms ? -1 : 1;
  if (pa.seq !== pb.seq) return pa.seq < pb.seq ? -1 : 1;
  return 0;
}

function parseOffset(o) {
  const m = /^([0-9a-f]+):(\d+)-(\d+)$/.exec(o || "");
  return m ? { epoch: m[1], ms: BigInt(m[2]), seq: BigInt(m[3]) } : null;
}

/** Full-jitter exponential backoff: a random delay in [0, min(cap, base * 2^attempt)]. */
export function backoffDelay(attempt, baseMs, capMs, random = Math.random) {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

export class Switchboard {
  constructor(url, options = {}) {
    this.url = url;
    this.options = { ...DEFAULTS, ...options };
    this.rooms = new Map();      // room -> last offset received (or null)
    this.handlers = new Map();   // event -> [fn]
    this.pending = new Map();    // publish id -> {resolve, reject}
    this.nextID = 1;
    this.attempt = 0;
    this.closedByUser = false;
    this.reconnectAfterMs = null;
    this.ws = null;
    this.connect();
  }

  /** Subscribes to "open", "hello", "joined", "message", "error", "close", "reconnecting". */
  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(fn);
    return this;
  }

  emit(event, value) {
    for (const fn of this.handlers.get(event) || []) fn(value);
  }

  /** Joins `room` now and after every reconnect, resuming from the last offset received. */
  join(room) {
    if (!this.rooms.has(room)) this.rooms.set(room, null);
    this.send({ op: "join", room, ...(this.rooms.get(room) ? { since: this.rooms.get(room) } : {}) });
  }

  leave(room) {
    this.rooms.delete(room);
    this.send({ op: "leave", room });
  }

  /**
   * Publishes `data` to `room`; resolves with the offset, rejects with the server's error. A publish answered
   * `unavailable` (never stored) or `unknown` (maybe stored) is retried with the same `id` on the same
   * connection, up to 4 more times with backoff: the server stores one `id` at most once per session
   * (docs/protocol.md, publish outcomes), so a retry never duplicates. After a reconnect it is not retried
   * (a new session): the promise rejects with the last code and the application decides.
   */
  publish(room, data) {
    const id = this.nextID++;
    const frame = { op: "publish", room, data, id };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, frame, attempts: 1, ws: this.ws });
      if (!this.send(frame)) {
        this.pending.delete(id);
        reject(new Error("not connected"));
      }
    });
  }

  /** Closes for good (no reconnect). */
  close() {
    this.closedByUser = true;
    if (this.ws) this.ws.close(1000);
  }

  send(frame) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  connect() {
    const WS = this.options.WebSocket;
    const ws = new WS(this.url);
    this.ws = ws;
    this.reconnectAfterMs = null;
    ws.onopen = () => {
      this.attempt = 0;
      if (this.options.getToken) {
        this.awaitingHello = true;   // rooms are rejoined once `hello` confirms the token
        this.renewToken("connect");
      } else {
        if (this.options.token) this.send({ op: "auth", token: this.options.token });
        this.rejoin();
      }
      this.emit("open");
    };
    ws.onmessage = (event) => this.receive(typeof event.data === "string" ? event.data : String(event.data));
    ws.onclose = (event) => {
      for (const [, p] of this.pending) p.reject(new Error("connection closed"));
      this.pending.clear();
      this.emit("close", { code: event.code, reason: event.reason });
      const final = this.options.getToken ? FINAL_WITH_PROVIDER : FINAL_CLOSE_CODES;
      if (this.closedByUser || final.has(event.code)) return;
      const delay = this.reconnectAfterMs ?? backoffDelay(this.attempt, this.options.backoffBaseMs, this.options.backoffCapMs);
      this.attempt += 1;
      this.emit("reconnecting", { delayMs: delay, attempt: this.attempt });
      setTimeout(() => this.connect(), delay);
    };
    ws.onerror = () => {}; // onclose follows
  }

  /** Rejoins every room with the last offset received: the server replays what was missed. */
  rejoin() {
    for (const [room, since] of this.rooms) this.send({ op: "join", room, ...(since ? { since } : {}) });
  }

  /** Asks the token provider and sends `auth` on the connection that asked (a stale answer is dropped). */
  async renewToken(reason) {
    const ws = this.ws;
    let token;
    try { token = await this.options.getToken(reason); } catch { return; }
    if (token && ws === this.ws) this.send({ op: "auth", token });
  }

  receive(text) {
    let m;
    try { m = JSON.parse(text); } catch { return; }
    switch (m.op) {
      case "hello":
        if (this.awaitingHello) { this.awaitingHello = false; this.rejoin(); }
        this.emit("hello", m);
        break;
      case "token_expiring":
        if (this.options.getToken) this.renewToken("renew");
        this.emit("token_expiring", m);
        break;
      case "joined":
        // recovered: the missed messages follow, keep counting from our offset. Otherwise (a first join, or
        // a history that was reset or trimmed past our offset) continue from the room's latest offset; the
        // "joined" event tells the app to refetch its state when `recovered` is false after a reconnect.
        if (!m.recovered && this.rooms.has(m.room)) this.rooms.set(m.room, m.offset);
        this.emit("joined", m);
        break;
      case "message": {
        const last = this.rooms.get(m.room);
        const cmp = last ? compareOffsets(m.offset, last) : null;
        if (cmp !== null && cmp <= 0) return;   // already delivered (resume seam)
        if (this.rooms.has(m.room)) this.rooms.set(m.room, m.offset);
        this.emit("message", m);
        break;
      }
      case "ack": {
        const p = this.pending.get(m.id);
        if (p) { this.pending.delete(m.id); p.resolve(m.offset); }
        break;
      }
      case "error": {
        if (m.code === "token_expired" && this.options.getToken) this.renewToken("renew");
        const p = m.id !== undefined && this.pending.get(m.id);
        if (p && (m.code === "unavailable" || m.code === "unknown") && p.attempts < 5 && p.ws === this.ws) {
          const delay = backoffDelay(p.attempts, this.options.backoffBaseMs, this.options.backoffCapMs);
          p.attempts += 1;
          setTimeout(() => { if (this.pending.get(m.id) === p && p.ws === this.ws) this.send(p.frame); }, delay);
          break;
        }
        if (p) { this.pending.delete(m.id); p.reject(Object.assign(new Error(m.message), { code: m.code })); }
        this.emit("error", m);
        break;
      }
      case "reconnect":
        // Sent before a drain close: wait this long (the server jitters it) instead of the backoff.
        this.reconnectAfterMs = m.after_ms;
        break;
      default:
        this.emit(m.op, m);
    }
  }
}
