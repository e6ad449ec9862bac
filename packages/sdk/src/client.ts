// The real-time client: wires the connection state machine (connection.ts) to the cursor
// tracker (exactly-once, in-order delivery), the outbox (sends that survive reconnects) and
// pending requests, and turns server frames into typed events.
import { ClientId, DEFAULT_LIMITS, Id } from '@confab/protocol';
import type { ClientFrame, Limits, Message, ServerFrame, ServerFrameOf } from '@confab/protocol';
import { Backoff } from './backoff.js';
import { TokenBucket, clientPacing } from './bucket.js';
import { toWebSocketUrl } from './codec.js';
import { Connection } from './connection.js';
import { CursorTracker } from './cursors.js';
import type { SyncKind } from './cursors.js';
import { Emitter } from './emitter.js';
import { ConfabError } from './errors.js';
import { Outbox } from './outbox.js';
import type { OutboxOp } from './outbox.js';
import { clearTimer, hostWebSocket, randomId, setTimer } from './platform.js';
import type { TimerHandle } from './platform.js';
import { Requests } from './requests.js';
import type {
  ClientEvents, ClientOptions, ConnectionState, HistoryOptions, HistoryPage, PingResult, SendOptions, SyncResult, Welcome,
} from './types.js';

/**
 * Real-time client over one WebSocket: resumes from per-conversation cursors on every
 * (re)connect, delivers each log entry once and in order (`message` event), and sends
 * through an ordered outbox that survives reconnects without loss or duplicates.
 *
 * Calls made before `connect()` or while reconnecting wait for the next connection.
 */
export class ConfabClient extends Emitter<ClientEvents> {
  private readonly connection: Connection;
  private readonly requestTimeoutMs: number;
  private readonly now: () => number;
  private readonly bucket: TokenBucket;
  private readonly tracker: CursorTracker;
  private readonly outbox: Outbox;
  private readonly requests: Requests;
  /** Gap-filling syncs in flight on this connection: request id -> conversation. */
  private readonly gapSyncs = new Map<string, { conversationId: string; timer: TimerHandle }>();
  private helloIds: string[] = [];
  private helloTimer: TimerHandle | undefined;
  private lastWelcome: Welcome | undefined;
  private limits: Limits = DEFAULT_LIMITS;
  private firstWelcome: { promise: Promise<Welcome>; resolve(w: Welcome): void; reject(e: ConfabError): void } | undefined;
  private nextRequest = 0;

  /** @param options server URL, credentials and tuning; see {@link ClientOptions}. */
  constructor(options: ClientOptions) {
    super();
    const WebSocket = options.WebSocket ?? hostWebSocket();
    if (!WebSocket) throw new TypeError('no WebSocket implementation: pass options.WebSocket (in Node 20: `import { WebSocket } from "ws"`)');
    const { getToken, token } = options;
    if (token === undefined && getToken === undefined) throw new TypeError('pass options.token or options.getToken');
    const random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.connection = new Connection({
      WebSocket,
      url: toWebSocketUrl(options.url),
      token: getToken ?? (() => token!),
      canRefresh: getToken !== undefined,
      backoff: new Backoff({ ...options.reconnect, random }),
      random,
      now: this.now,
      handshakeTimeoutMs: this.requestTimeoutMs,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 25_000,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 10_000,
    }, {
      hello: () => {
        const cursors = this.tracker.helloCursors();
        this.helloIds = Object.keys(cursors);
        return cursors;
      },
      up: (welcome) => this.onWelcome(welcome),
      frame: (frame) => this.dispatch(frame),
      invalid: (error) => this.emit('error', error),
      down: () => this.onDown(),
      state: (change) => this.emit('state', change),
      finished: (error) => this.onFinished(error),
    });
    const pacing = clientPacing(DEFAULT_LIMITS.sendsPerSecond, DEFAULT_LIMITS.sendBurst);
    this.bucket = new TokenBucket(pacing.rate, pacing.capacity, this.now);
    this.tracker = new CursorTracker({
      deliver: (m) => this.emit('message', m),
      requestSync: (conversationId, after) => this.gapSync(conversationId, after),
      synced: (conversationId, seq) => this.emit('synced', { conversationId, seq }),
    });
    for (const [id, seq] of Object.entries(options.cursors ?? {})) this.tracker.track(id, seq, false);
    const host = {
      transmit: (frame: ClientFrame) => this.connection.state === 'open' && this.connection.send(frame),
      newRequestId: () => this.newRequestId(),
      limits: () => this.limits,
      random,
    };
    this.outbox = new Outbox(host, this.bucket, options.sendWindow ?? 64);
    this.requests = new Requests(host, this.requestTimeoutMs);
  }

  /** The connection state. */
  get state(): ConnectionState {
    return this.connection.state;
  }

  /** The `welcome` of the current (or last) connection, once there was one. */
  get welcome(): Welcome | undefined {
    return this.lastWelcome;
  }

  /** Sends, edits and deletes queued or waiting for their ack. */
  get pendingSends(): number {
    return this.outbox.size;
  }

  /**
   * Connects (and keeps reconnecting). Resolves with the first `welcome`; rejects when the
   * client is closed first or the server refuses for good (e.g. `invalid_token`, close 4001).
   */
  connect(): Promise<Welcome> {
    if (this.state === 'closed') return Promise.reject(new ConfabError('closed', 'client is closed'));
    if (!this.firstWelcome) {
      let resolve!: (w: Welcome) => void;
      let reject!: (e: ConfabError) => void;
      const promise = new Promise<Welcome>((res, rej) => { resolve = res; reject = rej; });
      // A caller who ignores connect()'s promise still learns of failures from `state` events.
      promise.catch(() => undefined);
      this.firstWelcome = { promise, resolve, reject };
    }
    this.connection.start();
    return this.firstWelcome.promise;
  }

  /** Stops reconnecting, closes the socket and rejects whatever is pending with `closed`. Resolves once the socket is closed. */
  close(): Promise<void> {
    return this.connection.close();
  }

  /** Drops the current connection (if any) and connects again now, e.g. when the network came back. */
  reconnect(): void {
    this.connection.reconnect();
  }

  /** Sends a message; resolves with the committed entry (its `seq`) once acked, across reconnects. */
  send(conversationId: string, text: string, options: SendOptions = {}): Promise<Message> {
    return this.enqueue({ type: 'send', conversationId, clientId: options.clientId ?? randomId(), text });
  }

  /** Edits one of your messages; resolves with the committed `edit` entry. */
  edit(conversationId: string, messageId: string, text: string, options: SendOptions = {}): Promise<Message> {
    return this.enqueue({ type: 'edit', conversationId, messageId, clientId: options.clientId ?? randomId(), text });
  }

  /** Deletes a message; resolves with the committed `delete` entry. */
  delete(conversationId: string, messageId: string, options: SendOptions = {}): Promise<Message> {
    return this.enqueue({ type: 'delete', conversationId, messageId, clientId: options.clientId ?? randomId() });
  }

  /** Moves your read cursor to `seq` (a lower one is ignored by the server). */
  markRead(conversationId: string, seq: number): Promise<void> {
    return this.request((id) => ({ type: 'read', id, conversationId, seq }), (f) => { expect(f, 'ok'); });
  }

  /** A page of history over the socket (does not touch cursors or `message` events). */
  history(conversationId: string, options: HistoryOptions = {}): Promise<HistoryPage> {
    return this.request(
      (id) => ({ type: 'history', id, conversationId, before: options.before, after: options.after, limit: options.limit }),
      (f) => { const r = expect(f, 'history.result'); return { messages: r.messages, hasMore: r.hasMore }; },
    );
  }

  /**
   * Catches a conversation up from `after` (default: its cursor, or 0 if untracked, which
   * then starts tracking it). New entries arrive as `message` events; resolves when done.
   */
  sync(conversationId: string, after?: number): Promise<SyncResult> {
    if (!isId(conversationId)) return Promise.reject(new ConfabError('bad_request', `not a conversation id: ${JSON.stringify(conversationId)}`));
    if (this.tracker.get(conversationId) === undefined) this.tracker.track(conversationId, after ?? 0, false, false);
    return this.request(
      // Resent after a reconnect from the cursor reached meanwhile, unless `after` was explicit.
      (id) => ({ type: 'sync', id, conversationId, after: after ?? this.tracker.get(conversationId) ?? 0 }),
      (f) => { const r = expect(f, 'sync.done'); return { conversationId, seq: this.tracker.get(conversationId) ?? r.seq }; },
    );
  }

  /** Round trip to the server. */
  ping(): Promise<PingResult> {
    let sentAt = 0;
    return this.request(
      (id) => { sentAt = this.now(); return { type: 'ping', id }; },
      (f) => ({ rttMs: this.now() - sentAt, serverTime: expect(f, 'pong').time }),
    );
  }

  /**
   * Tracks a conversation from `seq` (the last entry you hold): it is resumed on every
   * reconnect and caught up now if connected. A tracked one only ever moves forward.
   */
  track(conversationId: string, seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError('seq must be a non-negative integer');
    if (!isId(conversationId)) throw new TypeError(`not a conversation id: ${JSON.stringify(conversationId)}`);
    this.tracker.track(conversationId, seq, this.state === 'open');
  }

  /** Forgets a conversation's cursor: it is no longer resumed on reconnect. */
  untrack(conversationId: string): void {
    this.tracker.untrack(conversationId);
  }

  /** The cursor (last seq held) of every tracked conversation; persist it to resume later. */
  cursors(): Record<string, number> {
    return this.tracker.snapshot();
  }

  /** The cursor of one conversation, or undefined when it is not tracked. */
  cursor(conversationId: string): number | undefined {
    return this.tracker.get(conversationId);
  }

  // ---- connection events -------------------------------------------------------------

  private onWelcome(welcome: Welcome): void {
    this.lastWelcome = welcome;
    this.limits = welcome.limits;
    const pacing = clientPacing(welcome.limits.sendsPerSecond, welcome.limits.sendBurst);
    this.bucket.configure(pacing.rate, pacing.capacity);
    this.tracker.connected(this.helloIds);
    // A hello catch-up the server never finishes must not leave its conversation stuck.
    this.helloTimer = setTimer(() => this.tracker.expireHello(), this.requestTimeoutMs);
    this.outbox.start();
    this.requests.start();
    this.emit('welcome', welcome);
    this.firstWelcome?.resolve(welcome);
  }

  private onDown(): void {
    clearTimer(this.helloTimer);
    this.helloTimer = undefined;
    for (const g of this.gapSyncs.values()) clearTimer(g.timer);
    this.gapSyncs.clear();
    this.outbox.stop();
    this.requests.stop();
    this.tracker.disconnected();
  }

  private onFinished(error: ConfabError): void {
    const closed = error.code === 'closed' ? error : new ConfabError('closed', `client closed: ${error.message}`, { cause: error });
    this.outbox.failAll(closed);
    this.requests.failAll(closed);
    this.firstWelcome?.reject(error);
  }

  // ---- frames --------------------------------------------------------------------------

  private dispatch(frame: ServerFrame): void {
    switch (frame.type) {
      case 'welcome': return; // handled by the connection
      case 'message': return this.tracker.live(frame.message);
      case 'sync.page': return this.tracker.page(frame.conversationId, frame.messages);
      case 'sync.done': return this.onSyncDone(frame);
      case 'ack':
        this.tracker.live(frame.message, true);
        this.outbox.ack(frame.id, frame.message);
        return;
      case 'ok':
      case 'pong':
      case 'history.result':
        if (frame.id !== undefined) this.requests.answer(frame.id, frame);
        return;
      case 'read.state':
        return this.emit('readState', { conversationId: frame.conversationId, seq: frame.seq, unread: frame.unread });
      case 'conversation': {
        const { type: _type, ...change } = frame;
        if (change.change === 'removed') this.tracker.untrack(change.conversationId);
        else if (change.change === 'added' && change.conversation) this.tracker.join(change.conversationId, change.conversation.lastSeq);
        return this.emit('conversation', change);
      }
      case 'error': return this.onError(frame);
    }
  }

  private onSyncDone(frame: ServerFrameOf<'sync.done'>): void {
    let kind: SyncKind = 'hello';
    if (frame.id !== undefined) {
      const gap = this.gapSyncs.get(frame.id);
      kind = gap ? 'gap' : 'request';
      if (gap) { clearTimer(gap.timer); this.gapSyncs.delete(frame.id); }
    }
    this.tracker.done(frame.conversationId, frame.seq, kind);
    if (kind === 'request') this.requests.answer(frame.id!, frame);
  }

  private onError(frame: ServerFrameOf<'error'>): void {
    const error = ConfabError.fromFrame(frame);
    const id = frame.id;
    if (id !== undefined) {
      if (this.outbox.error(id, error) || this.requests.error(id, error)) return;
      const gap = this.gapSyncs.get(id);
      if (gap) {
        clearTimer(gap.timer);
        this.gapSyncs.delete(id);
        this.tracker.syncFailed(gap.conversationId, error.code === 'forbidden' || error.code === 'conversation_not_found');
        return;
      }
    }
    this.emit('error', error);
  }

  // ---- outgoing ------------------------------------------------------------------------

  /** Sends a gap-filling sync for the tracker; false when not connected. */
  private gapSync(conversationId: string, after: number): boolean {
    if (this.state !== 'open') return false;
    const id = this.newRequestId();
    if (!this.connection.send({ type: 'sync', id, conversationId, after })) return false;
    const timer = setTimer(() => {
      this.gapSyncs.delete(id);
      this.tracker.syncFailed(conversationId, false);
    }, this.requestTimeoutMs);
    this.gapSyncs.set(id, { conversationId, timer });
    return true;
  }

  private request<T>(build: (id: string) => ClientFrame, accept: (frame: ServerFrame) => T): Promise<T> {
    if (this.state === 'closed') return Promise.reject(new ConfabError('closed', 'client is closed'));
    return this.requests.request(build, accept);
  }

  private enqueue(op: OutboxOp): Promise<Message> {
    if (this.state === 'closed') return Promise.reject(new ConfabError('closed', 'client is closed'));
    if (!ClientId.safeParse(op.clientId).success) return Promise.reject(new ConfabError('bad_request', 'clientId must be 1-64 printable ASCII characters'));
    if (op.type !== 'delete' && op.text.length === 0) return Promise.reject(new ConfabError('bad_request', 'text must not be empty'));
    return this.outbox.enqueue(op);
  }

  private newRequestId(): string {
    return (++this.nextRequest).toString(36);
  }
}

/** Narrows an answer frame to the type a request expects. */
function expect<T extends ServerFrame['type']>(frame: ServerFrame, type: T): ServerFrameOf<T> {
  if (frame.type !== type) throw new ConfabError('bad_response', `expected ${type}, got ${frame.type}`);
  return frame as ServerFrameOf<T>;
}

function isId(id: string): boolean {
  return Id.safeParse(id).success;
}
