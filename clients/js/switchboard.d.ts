// Types for switchboard.js (the wire format: docs/protocol.md). Checked by `tsc --noEmit -p clients/js`
// (types-check.ts uses every declaration) and by test.mjs, which compares these exports with the module's.

/** An offset "{epoch}:{ms}-{seq}": opaque, totally ordered per room. */
export type Offset = string;

/** Any JSON value: what `data` carries. */
export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

export interface HelloEvent { op: "hello"; node: string; session: string; heartbeat: number; loop?: string; user?: string }
export interface JoinedEvent { op: "joined"; room: string; offset: Offset; recovered: boolean; id?: string | number }
export interface LeftEvent { op: "left"; room: string; id?: string | number }
export interface MessageEvent { op: "message"; room: string; offset: Offset; data: JSONValue }
export interface PresenceEvent { op: "presence"; room: string; count: number; users: number; id?: string | number }
export interface ErrorEvent { op: "error"; code: string; message: string; id?: string | number; retry_after_ms?: number; grace_ms?: number }
export interface TokenExpiringEvent { op: "token_expiring"; expires_in_ms: number }
export interface ReconnectEvent { op: "reconnect"; after_ms: number }
export interface CloseEvent { code: number; reason: string }
export interface ReconnectingEvent { delayMs: number; attempt: number; url: string }

/** Events and what their handlers receive. */
export interface SwitchboardEvents {
  open: undefined;
  hello: HelloEvent;
  joined: JoinedEvent;
  left: LeftEvent;
  message: MessageEvent;
  presence: PresenceEvent;
  error: ErrorEvent;
  token_expiring: TokenExpiringEvent;
  reconnect: ReconnectEvent;
  close: CloseEvent;
  reconnecting: ReconnectingEvent;
}

/** The part of a WebSocket the client uses (the browser's, or Node's `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: any }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: any) => void) | null;
}

export interface SwitchboardOptions {
  /** Sent as `{"op":"auth"}` on every connection. */
  token?: string | null;
  /** Asked for a token on every connection ("connect") and before expiry ("renew"); wins over `token`. */
  getToken?: ((reason: "connect" | "renew") => Promise<string | null | undefined> | string | null | undefined) | null;
  /** First retry waits up to this many ms (full jitter, doubling per attempt). Default 250. */
  backoffBaseMs?: number;
  /** Longest retry wait in ms. Default 30000. */
  backoffCapMs?: number;
  /** WebSocket constructor; default `globalThis.WebSocket`. */
  WebSocket?: new (url: string) => WebSocketLike;
  /** Source of `online` and (without `document`) `visibilitychange`; default `globalThis` in a browser, none in Node. */
  window?: { addEventListener(type: string, fn: () => void): void; removeEventListener(type: string, fn: () => void): void } | null;
  /** Source of `visibilitychange` and `visibilityState`; default `globalThis.document`. */
  document?: { visibilityState?: string; addEventListener(type: string, fn: () => void): void; removeEventListener(type: string, fn: () => void): void } | null;
  /** Answers `onLine`; default `globalThis.navigator`. */
  navigator?: { onLine?: boolean } | null;
}

/** Compares two offsets of the same epoch: -1, 0 or 1; null when they cannot be compared. */
export declare function compareOffsets(a: Offset, b: Offset): -1 | 0 | 1 | null;

/** Full-jitter exponential backoff: a random delay in [0, min(cap, base * 2^attempt)) ms. */
export declare function backoffDelay(attempt: number, baseMs: number, capMs: number, random?: () => number): number;

export declare class Switchboard {
  /** One URL, or several tried in turn (the next one after every close). */
  constructor(url: string | string[], options?: SwitchboardOptions);
  /** The URL of the current (or next) connection. */
  readonly url: string;
  /** True while a connection is open. */
  readonly connected: boolean;
  /** Rooms joined and the last offset received in each. */
  readonly rooms: Map<string, Offset | null>;
  on<K extends keyof SwitchboardEvents>(event: K, fn: (value: SwitchboardEvents[K]) => void): this;
  off<K extends keyof SwitchboardEvents>(event: K, fn: (value: SwitchboardEvents[K]) => void): this;
  /** Joins now and after every reconnect, with `since` = the last offset received. */
  join(room: string): void;
  leave(room: string): void;
  /** Resolves with the message's offset (ack); rejects with an Error whose `code` is the server's. */
  publish(room: string, data: JSONValue): Promise<Offset>;
  /** Resolves with the room's cluster-wide presence. */
  presence(room: string): Promise<PresenceEvent>;
  /** Closes for good. */
  close(): void;
}
