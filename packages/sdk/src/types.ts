// The public surface of the SDK in one place: options, events, results and the minimal
// host interfaces (WebSocket, fetch) it is injected with.
import type { Conversation, Limits, Message, PresenceEntry, ServerFrameOf, Session, User } from '@confab/protocol';
import type { ConfabError } from './errors.js';

// ---- host interfaces ---------------------------------------------------------------------

/** A handler slot whose parameter is checked bivariantly, so both DOM and `ws` types fit. */
export type EventHandler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

/**
 * The subset of the WebSocket API the SDK uses. Browsers' `WebSocket` and the `ws` package's
 * `WebSocket` class both satisfy it.
 */
export interface WebSocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** Bytes queued by `send` but not yet written to the network. */
  readonly bufferedAmount: number;
  onopen: EventHandler<unknown> | null;
  onmessage: EventHandler<{ data: unknown }> | null;
  onclose: EventHandler<{ code: number; reason: string }> | null;
  onerror: EventHandler<unknown> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket class: `globalThis.WebSocket` in browsers, `import { WebSocket } from 'ws'` in Node 20. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** What the SDK passes to `fetch`; a subset of `RequestInit`. */
export interface FetchInit {
  method: string;
  headers: Record<string, string>;
  body?: string;
}

/** What the SDK reads from a `fetch` response; a subset of `Response`. */
export interface FetchResponseLike {
  readonly status: number;
  text(): Promise<string>;
}

/** A `fetch` implementation (the global one, or a wrapper adding timeouts, logging, ...). */
export type FetchLike = (url: string, init: FetchInit) => Promise<FetchResponseLike>;

/**
 * The host's view of the network: browsers know when they lose it (`navigator.onLine`, the
 * window's `online`/`offline` events) long before a socket notices.
 */
export interface NetworkLike {
  /** True when the host believes it is online. */
  online(): boolean;
  /** Calls `listener` on every change; returns a function that removes it. */
  subscribe(listener: (online: boolean) => void): () => void;
}

// ---- REST client -------------------------------------------------------------------------

/** Options of {@link ConfabApi}. */
export interface ApiOptions {
  /** Server base URL, e.g. `http://localhost:8080`. */
  baseUrl: string;
  /** Defaults to `globalThis.fetch`. */
  fetch?: FetchLike;
  /** A fixed access token (otherwise the one from `register`/`login`/`refresh` is used). */
  token?: string;
  /**
   * Called before every authenticated request; takes precedence over `token` and over the
   * session the client holds. When set, the client does not refresh tokens by itself.
   */
  getAccessToken?: () => string | undefined | Promise<string | undefined>;
  /** Called whenever `register`, `login` or `refresh` returns a new session (persist it here). */
  onSession?: (session: Session) => void;
  /** Clock used to tell when the access token expires. Defaults to `Date.now`. */
  now?: () => number;
}

/** Query of a history page: `after` = seq > after oldest first; `before` (or neither) = the page before, oldest first. */
export interface HistoryOptions {
  before?: number;
  after?: number;
  /** Page size, capped by the server at `limits.maxPageSize`. */
  limit?: number;
}

/** A page of a conversation's log, oldest first. */
export interface HistoryPage {
  messages: Message[];
  /** True when more entries exist in the direction asked for. */
  hasMore: boolean;
}

/** The answer to a send, edit or delete over REST. */
export interface SendResult {
  /** The committed log entry, with its server-assigned `seq`. */
  message: Message;
  /** True when this client id had already been committed: `message` is the original. */
  duplicate: boolean;
}

/** The read cursor after `markRead`. */
export interface ReadState {
  conversationId: string;
  /** Everything up to this seq is read. */
  seq: number;
  /** Unread messages left after `seq`. */
  unread: number;
}

/** The caller's conversations, most recent activity first. */
export interface ConversationList {
  conversations: Conversation[];
  totalUnread: number;
}

/** The caller, with privacy settings (`GET /v1/me`, `PATCH /v1/me`). */
export interface Me extends User {
  /** True when the user hides their last-seen time from everyone. */
  hideLastSeen: boolean;
}

/** Settings changed by `updateMe` (`PATCH /v1/me`). */
export interface MeSettings {
  /** Hide your last-seen time from everyone (watchers see `lastSeen: null`). */
  hideLastSeen: boolean;
}

/** One member's receipt cursors in {@link ConversationReceipts}. */
export interface MemberReceipt {
  userId: string;
  username: string;
  /** Every entry up to this seq reached a device of this member. */
  delivered: number;
  /** This member read every entry up to this seq. */
  read: number;
}

/**
 * Who has received and read what in a conversation (`GET /v1/conversations/:id/receipts`):
 * the aggregates (as in the `receipts` event) and every member's cursors. A message with seq
 * `s` reached a member when `s <= delivered`, and was read by them when `s <= read`.
 */
export interface ConversationReceipts {
  conversationId: string;
  /** Every entry up to this seq reached every member. */
  delivered: number;
  /** Every entry up to this seq was read by every member. */
  read: number;
  members: MemberReceipt[];
}

/** Presence of a user: `online`, `away` (every connected device is in the background) or `offline`. */
export type PresenceStatus = PresenceEntry['status'];

/** The presence a device announces with `setPresence`. */
export type DevicePresence = Exclude<PresenceStatus, 'offline'>;

/** One user's presence; `lastSeen` (ms since epoch) is null while online, never seen, or hidden. */
export type Presence = PresenceEntry;

/** Answer to a presence query (`watchPresence` or REST `presence`). */
export interface PresenceResult {
  /** The current state of every user you may see. */
  users: Presence[];
  /** Users you share no conversation with: their presence is not yours to see. */
  denied: string[];
}

// ---- WebSocket client --------------------------------------------------------------------

/**
 * Connection states. `idle` until `connect()`; `connecting` while a socket opens and the
 * `hello`/`welcome` handshake runs; `open` after `welcome`; `reconnecting` while waiting
 * (backoff) before the next attempt; `closed` for good (by `close()` or a terminal close code).
 */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Payload of the `state` event. */
export interface StateChange {
  state: ConnectionState;
  previous: ConnectionState;
  /** WebSocket close code that caused the change, when there was one (1006: lost without a close frame). */
  code?: number;
  /** Why: the close reason, the server's error message, or an SDK explanation. */
  reason?: string;
  /** In `reconnecting`: how long until the next attempt. */
  delayMs?: number;
}

/** The server's `welcome`: who we are, and the limits to respect. */
export interface Welcome {
  v: number;
  userId: string;
  username: string;
  deviceId: string;
  nodeId: string;
  limits: Limits;
}

/** Payload of the `synced` event and result of `sync()`. */
export interface SyncResult {
  conversationId: string;
  /** The client's cursor once the catch-up was applied: every entry up to it was delivered. */
  seq: number;
}

/** Payload of the `conversation` event: the user was added to, removed from, or a conversation changed. */
export type ConversationChange = Omit<ServerFrameOf<'conversation'>, 'type'>;

/** Result of `ping()`. */
export interface PingResult {
  /** Round trip in milliseconds, measured with the client's clock. */
  rttMs: number;
  /** The server's clock (ms since epoch) when it answered. */
  serverTime: number;
}

/** Per-call options of `send`, `edit` and `delete`. */
export interface SendOptions {
  /** Idempotency key (1-64 printable ASCII); defaults to a random UUID. Reuse it to retry safely. */
  clientId?: string;
}

/** Reconnection backoff: delay = random() x min(maxDelayMs, minDelayMs x 2^attempt). */
export interface ReconnectOptions {
  /** Base delay of the first retry. Default 250. */
  minDelayMs?: number;
  /** Cap on the delay. Default 15000. */
  maxDelayMs?: number;
}

/** What `getToken` is told about why a token is needed. */
export interface TokenContext {
  /** True when the server closed the last connection because the token had expired (4002): refresh it. */
  expired: boolean;
}

/**
 * Aggregate receipts of a conversation (`receipts` event, `receiptsOf`). A message of yours
 * with seq `s` is delivered (✓✓) when `s <= delivered`, read when `s <= read`; in a direct
 * conversation that is the peer's state, in a group every member's.
 */
export interface Receipts {
  conversationId: string;
  /** Every entry up to this seq reached a device of every member. */
  delivered: number;
  /** Every entry up to this seq was read by every member. */
  read: number;
}

/** Payload of the `typing` event: a member started or stopped typing (or their indicator expired). */
export interface TypingChange {
  conversationId: string;
  userId: string;
  username: string;
  typing: boolean;
}

/** A member currently typing in a conversation (see `typingUsers`). */
export interface TypingUser {
  userId: string;
  username: string;
}

/** Options of {@link ConfabClient}. */
export interface ClientOptions {
  /** Server base URL (`http(s)://host:port`); the socket goes to `ws(s)://host:port/v1/ws`. A `ws(s)://` URL is used as is. */
  url: string;
  /** A fixed access token. A connection closed with `token_expired` then ends the client. */
  token?: string;
  /** Called on every (re)connect for the token to send in `hello`, so callers can refresh it. */
  getToken?: (context: TokenContext) => string | Promise<string>;
  /** Defaults to `globalThis.WebSocket`; pass the `ws` package's `WebSocket` in Node 20. */
  WebSocket?: WebSocketConstructor;
  /** Initial cursors (last seq held per conversation), e.g. persisted from `cursors()`. */
  cursors?: Record<string, number>;
  /** Reconnection backoff. */
  reconnect?: ReconnectOptions;
  /** Random source in [0, 1) for jitter; injectable for tests. Default `Math.random`. */
  random?: () => number;
  /** Clock in ms; injectable for tests. Default `Date.now`. */
  now?: () => number;
  /**
   * How long `markRead`, `history`, `sync` and `ping` wait for their answer (including time
   * spent reconnecting), and how long a handshake may take. Sends never time out. Default 30000.
   */
  requestTimeoutMs?: number;
  /** Idle time after which the client pings the server to check the connection; 0 disables. Default 25000. */
  heartbeatIntervalMs?: number;
  /** How long to wait for any frame after a heartbeat ping before reconnecting. Default 10000. */
  heartbeatTimeoutMs?: number;
  /** Most sends/edits/deletes in flight (sent, not yet acked). Default 64. */
  sendWindow?: number;
  /**
   * Send delivery receipts (`received`) by itself after `message` events, coalesced per
   * conversation. Default true. When false, call `markReceived` yourself.
   */
  autoReceipts?: boolean;
  /** How long delivery receipts are held to coalesce a burst (trailing edge). Default 250. */
  receiptDelayMs?: number;
  /**
   * Where the client learns that the network went away or came back (see `setOnline`).
   * Default: the browser's `navigator.onLine` and `online`/`offline` events when present (none
   * in Node); `false` turns it off.
   */
  network?: NetworkLike | false;
}

/** Events of {@link ConfabClient} and their payloads. */
export interface ClientEvents {
  /** Each log entry exactly once per (conversation, seq), in seq order per conversation, from catch-up and live. */
  message: Message;
  /** A conversation finished catching up (after `hello` or a `sync`) and is live. */
  synced: SyncResult;
  /** The connection state changed. */
  state: StateChange;
  /** The user's read cursor moved (possibly on another device), or their unread count changed. */
  readState: ReadState;
  /** The aggregate delivery/read receipts of a conversation moved. */
  receipts: Receipts;
  /** A watched user's presence: once per user in each answer to `watchPresence` (also after every reconnect), then per change. */
  presence: Presence;
  /** A member started or stopped typing, or their indicator expired. Emitted on changes only, not on renewals. */
  typing: TypingChange;
  /** The user was added to or removed from a conversation, or it was updated. */
  conversation: ConversationChange;
  /** An error not tied to a pending call: unsolicited error frames, malformed server frames. */
  error: ConfabError;
  /** Every successful handshake (the first and each reconnect). */
  welcome: Welcome;
}
