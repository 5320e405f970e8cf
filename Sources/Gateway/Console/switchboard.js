// Switchboard browser client: a plain ES module, no build step; types in clients/js/switchboard.d.ts.
// This file is clients/js/switchboard.js (a link to here): it lives beside the console so the binary embeds it.
//
//   import { Switchboard } from "./switchboard.js";
//   const sb = new Switchboard("wss://example.com/ws", { getToken: async () => "…" });
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
//
// Browsers: while `navigator.onLine` is false no attempt is made; the `online` event, and the page
// becoming visible again, cut a pending backoff short and connect at once (the network is back, or the
// user is looking: a wait of up to `backoffCapMs` would only be in their way).

const DEFAULTS = {
  token: null,            // sent as {"op":"auth"} right after open when set
  getToken: null,         // async (reason: "connect" | "renew") => token; wins over `token`
  backoffBaseMs: 250,     // first retry waits up to this long (full jitter)
  backoffCapMs: 30000,    // never longer than this
  WebSocket: globalThis.WebSocket, // inject one in Node (e.g. the `ws` package)
  // Where `online`/`offline` and `visibilitychange` come from, and what answers `onLine`/`visibilityState`.
  window: globalThis.addEventListener ? globalThis : null,
  document: globalThis.document || null,
  navigator: globalThis.navigator || null,
};

// Close codes after which reconnecting cannot help (docs/protocol.md "Close codes"); 4003 (token expired)
// is final only without a token provider to ask for a fresh one.
const FINAL = [1002, 1003, 1007, 1008, 1009, 4001, 4002];

/** Compares two offsets "{epoch}:{ms}-{seq}" of the same epoch: -1, 0, 1, or null when they cannot be compared. */
export function compareOffsets(a, b) {
  const pa = parseOffset(a), pb = parseOffset(b);
  if (!pa || !pb || pa[0] !== pb[0]) return null;
  for (let i = 1; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] < pb[i] ? -1 : 1;
  return 0;
}

function parseOffset(o) {
  const m = /^([0-9a-f]+):(\d+)-(\d+)$/.exec(o || "");
  return m && [m[1], BigInt(m[2]), BigInt(m[3])];
}

/** Full-jitter exponential backoff: a random delay in [0, min(cap, base * 2^attempt)) milliseconds. */
export function backoffDelay(attempt, baseMs, capMs, random = Math.random) {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 52)));
}

export class Switchboard {
  /** `url`: one URL, or several tried in turn (the next one after every close). */
  constructor(url, options = {}) {
    this.urls = [].concat(url);
    this.urlIndex = 0;
    this.options = { ...DEFAULTS, ...options };
    this.rooms = new Map();      // room -> last offset received (or null)
    this.handlers = new Map();   // event -> [fn]
    this.pending = new Map();    // request id -> {resolve, reject, frame, attempts, ws}
    this.nextID = 1;
    this.attempt = 0;
    this.closedByUser = false;
    this.reconnectAfterMs = null;
    this.timer = null;           // pending reconnect
    this.ws = null;
    this.wake = () => this.wakeUp();
    const w = this.options.window;
    if (w) {
      w.addEventListener("online", this.wake);
      (this.options.document || w).addEventListener("visibilitychange", this.wake);
    }
    this.connect();
  }

  /** The URL of the current (or next) connection. */
  get url() { return this.urls[this.urlIndex % this.urls.length]; }

  /** True while a connection is open. */
  get connected() { return !!this.ws && this.ws.readyState === 1; }

  /** Subscribes to "open", "hello", "joined", "left", "message", "presence", "error", "close", "reconnecting", "token_expiring". */
  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(fn);
    return this;
  }

  /** Removes a handler added with `on`. */
  off(event, fn) {
    const list = this.handlers.get(event);
    if (list && list.includes(fn)) list.splice(list.indexOf(fn), 1);
    return this;
  }

  emit(event, value) {
    for (const fn of this.handlers.get(event) || []) fn(value);
  }

  /** Joins `room` now (when connected) and after every reconnect, resuming from the last offset received. */
  join(room) {
    if (!this.rooms.has(room)) this.rooms.set(room, null);
    if (this.ready) this.send(this.joinFrame(room));
  }

  /** Leaves `room` and forgets its offset. */
  leave(room) {
    this.rooms.delete(room);
    if (this.ready) this.send({ op: "leave", room });
  }

  /**
   * Publishes `data` to `room`; resolves with the offset, rejects with the server's error. A publish answered
   * `unavailable` (never stored) or `unknown` (maybe stored) is retried with the same `id` on the same
   * connection, up to 4 more times with backoff: the server stores one `id` at most once per session
   * (docs/protocol.md, publish outcomes), so a retry never duplicates. After a reconnect it is not retried
   * (a new session): the promise rejects with the last code and the application decides.
   */
  publish(room, data) {
    return this.request({ op: "publish", room, data });
  }

  /** Asks for `room`'s cluster-wide presence; resolves with `{room, count, users}`. */
  presence(room) {
    return this.request({ op: "presence", room });
  }

  request(body) {
    const id = this.nextID++;
    const frame = { ...body, id };
    return new Promise((resolve, reject) => {
      if (!this.send(frame)) return reject(new Error("not connected"));
      this.pending.set(id, { resolve, reject, frame, attempts: 1, ws: this.ws });
    });
  }

  /** Closes for good (no reconnect) and stops listening to the page's events. */
  close() {
    this.closedByUser = true;
    clearTimeout(this.timer);
    const w = this.options.window;
    if (w) {
      w.removeEventListener("online", this.wake);
      (this.options.document || w).removeEventListener("visibilitychange", this.wake);
    }
    if (this.ws) this.ws.close(1000);
  }

  send(frame) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  joinFrame(room) {
    const since = this.rooms.get(room);
    return since ? { op: "join", room, since } : { op: "join", room };
  }

  get online() {
    const n = this.options.navigator;
    return !n || n.onLine !== false;
  }

  /** `online`, or the page shown again: a connection waiting out its backoff is made now. */
  wakeUp() {
    const d = this.options.document;
    // A drain's `reconnect.after_ms` spreads the cluster's load: it is kept whatever the page does.
    if (this.closedByUser || !this.online || (d && d.visibilityState === "hidden") || this.reconnectAfterMs != null) return;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      this.attempt = 0;
      this.connect();
    }
  }

  connect() {
    this.timer = null;
    this.reconnectAfterMs = null;  // the server's delay, if any, is over
    if (this.closedByUser) return;
    // Offline: no attempt now; the `online` event (wakeUp) makes it.
    if (!this.online && this.options.window) { this.timer = setTimeout(() => this.connect(), this.options.backoffCapMs); return; }
    const ws = new this.options.WebSocket(this.url);
    this.ws = ws;
    this.ready = false;          // true once `hello` arrived on this connection
    ws.onopen = () => {
      if (this.options.getToken) this.renewToken("connect");
      else if (this.options.token) this.send({ op: "auth", token: this.options.token });
      this.emit("open");
    };
    ws.onmessage = (event) => this.receive(String(event.data));
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this.ready = false;
      for (const [, p] of this.pending) p.reject(new Error("connection closed"));
      this.pending.clear();
      this.emit("close", { code: event.code, reason: event.reason });
      if (this.closedByUser || FINAL.includes(event.code) || (event.code === 4003 && !this.options.getToken)) return;
      const delay = this.reconnectAfterMs ?? backoffDelay(this.attempt, this.options.backoffBaseMs, this.options.backoffCapMs);
      this.attempt += 1;
      this.urlIndex += 1;
      this.emit("reconnecting", { delayMs: delay, attempt: this.attempt, url: this.url });
      this.timer = setTimeout(() => this.connect(), delay);
    };
    ws.onerror = () => {}; // onclose follows
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
    const p = m.id !== undefined && this.pending.get(m.id);
    switch (m.op) {
      case "hello":
        // `hello` follows authentication, so rooms are rejoined only now. A later `hello` on the same
        // connection answers a renewal `auth`: the server itself re-sends `joined` and what was held back.
        if (!this.ready) {
          this.ready = true;
          this.attempt = 0;
          for (const room of this.rooms.keys()) this.send(this.joinFrame(room));
        }
        break;
      case "token_expiring":
        if (this.options.getToken) this.renewToken("renew");
        break;
      case "joined":
        // recovered: the missed messages follow, keep counting from our offset. Otherwise (a first join, or
        // a history that was reset or trimmed past our offset) continue from the room's latest offset; the
        // "joined" event tells the app to refetch its state when `recovered` is false after a reconnect.
        if (!m.recovered && this.rooms.has(m.room)) this.rooms.set(m.room, m.offset);
        break;
      case "message": {
        const last = this.rooms.get(m.room);
        const cmp = last ? compareOffsets(m.offset, last) : null;
        if (cmp !== null && cmp <= 0) return;   // already delivered (resume seam)
        if (this.rooms.has(m.room)) this.rooms.set(m.room, m.offset);
        break;
      }
      case "ack":
      case "presence":
        if (p) { this.pending.delete(m.id); p.resolve(m.op === "ack" ? m.offset : m); }
        break;
      case "error":
        if (m.code === "token_expired" && this.options.getToken) this.renewToken("renew");
        if (p && (m.code === "unavailable" || m.code === "unknown") && p.attempts < 5 && p.ws === this.ws) {
          const delay = backoffDelay(p.attempts, this.options.backoffBaseMs, this.options.backoffCapMs);
          p.attempts += 1;
          setTimeout(() => { if (this.pending.get(m.id) === p && p.ws === this.ws) this.send(p.frame); }, delay);
          return;
        }
        if (p) { this.pending.delete(m.id); p.reject(Object.assign(new Error(m.message), { code: m.code })); }
        break;
      case "reconnect":
        // Sent before a drain close: wait this long (the server jitters it) instead of the backoff.
        this.reconnectAfterMs = m.after_ms;
        break;
    }
    this.emit(m.op, m);
  }
}
