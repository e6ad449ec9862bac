// The real-time client: wires the connection state machine (connection.ts) to the cursor
// tracker (exactly-once, in-order delivery), the outbox (sends that survive reconnects),
// pending requests, receipts, presence and typing, and turns server frames into typed events.
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
import { clearTimer, hostNetwork, hostWebSocket, randomId, setTimer } from './platform.js';
import type { TimerHandle } from './platform.js';
import { PresenceBook } from './presence.js';
import { ReceiptBook, ReceiptSender } from './receipts.js';
import { Requests } from './requests.js';
import { TypingBook } from './typing.js';
import type {
  ClientEvents, ClientOptions, ConnectionState, DevicePresence, HistoryOptions, HistoryPage, PingResult, Presence, PresenceResult,
  ReadState, Receipts, SendOptions, SyncResult, TypingUser, Welcome,
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
  private readonly autoReceipts: boolean;
  private readonly receiptSender: ReceiptSender;
  private readonly book = new ReceiptBook();
  private readonly presence: PresenceBook;
  private readonly typists: TypingBook;
  /** Gap-filling syncs in flight on this connection: request id -> conversation. */
  private readonly gapSyncs = new Map<string, { conversationId: string; timer: TimerHandle }>();
  private helloIds: string[] = [];
  private helloTimer: TimerHandle | undefined;
  private lastWelcome: Welcome | undefined;
  private limits: Limits = DEFAULT_LIMITS;
  private firstWelcome: { promise: Promise<Welcome>; resolve(w: Welcome): void; reject(e: ConfabError): void } | undefined;
  private nextRequest = 0;
  private unsubscribeNetwork: (() => void) | undefined;

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
      deliver: (m) => this.delivered(m),
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
    this.autoReceipts = options.autoReceipts ?? true;
    this.receiptSender = new ReceiptSender({ transmit: host.transmit, cursor: (id) => this.tracker.get(id) }, options.receiptDelayMs ?? 250);
    this.presence = new PresenceBook({
      transmit: host.transmit,
      request: (build, accept) => this.request(build, accept),
      emit: (p) => this.emit('presence', p),
      error: (e) => this.emit('error', e),
    });
    this.typists = new TypingBook({ transmit: host.transmit, emit: (c) => this.emit('typing', c), limits: host.limits, now: this.now });
    const network = options.network === undefined ? hostNetwork() : options.network || undefined;
    if (network) {
      this.connection.setOnline(network.online());
      this.unsubscribeNetwork = network.subscribe((online) => this.setOnline(online));
    }
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

  /**
   * Stops reconnecting, closes the socket and rejects whatever is pending with `closed`.
   * Pending delivery receipts are sent first. Resolves once the socket is closed.
   */
  close(): Promise<void> {
    this.receiptSender.flush();
    return this.connection.close();
  }

  /** Drops the current connection (if any) and connects again now (ignored while offline, see `setOnline`). */
  reconnect(): void {
    this.connection.reconnect();
  }

  /**
   * Tells the client the network went away (false) or came back (true); called by itself from
   * `options.network` (in browsers: the `online`/`offline` events). Offline, the socket is
   * dropped at once and no reconnect is tried: the state is `reconnecting` with reason
   * `network offline`, and sends wait in the outbox. Back online, it reconnects at once and the
   * outbox goes out in order with the same client ids.
   */
  setOnline(online: boolean): void {
    this.connection.setOnline(online);
  }

  /** False while the client believes the network is down. */
  get online(): boolean {
    return !this.connection.isOffline;
  }

  /** Sends a message; resolves with the committed entry (its `seq`) once acked, across reconnects. */
  send(conversationId: string, text: string, options: SendOptions = {}): Promise<Message> {
    this.typists.sent(conversationId);
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

  // ---- receipts, presence, typing ----------------------------------------------------------

  /**
   * Sends a delivery receipt now: this device holds every entry up to `seq` (default and cap:
   * the conversation's cursor). Only needed with `autoReceipts: false`. Fire and forget: false
   * when nothing was sent (not connected, nothing new); a wrong one comes back as an `error` event.
   */
  markReceived(conversationId: string, seq?: number): boolean {
    const upTo = seq ?? this.tracker.get(conversationId);
    return upTo !== undefined && this.receiptSender.send(conversationId, upTo);
  }

  /** The latest aggregate receipts of a conversation pushed by the server, if any arrived yet. */
  receiptsOf(conversationId: string): Receipts | undefined {
    return this.book.receiptsOf(conversationId);
  }

  /** The unread count of a conversation, from the latest `read.state` (or `conversation`) frame; undefined if none came yet. */
  unreadOf(conversationId: string): number | undefined {
    return this.book.readStateOf(conversationId)?.unread;
  }

  /** The read cursor and unread count of a conversation, as last pushed by the server. */
  readStateOf(conversationId: string): ReadState | undefined {
    return this.book.readStateOf(conversationId);
  }

  /**
   * Announces this device as in use (`online`) or in the background (`away`). Remembered and
   * announced again after every reconnect; until the first call the server counts the device online.
   */
  setPresence(status: DevicePresence): void {
    if (status !== 'online' && status !== 'away') throw new TypeError(`presence must be "online" or "away", got ${JSON.stringify(status)}`);
    this.presence.set(status);
  }

  /**
   * Watches these users' presence (replacing the previous list; `[]` stops). Resolves with their
   * current state; `presence` events follow for every change, and for the fresh state after
   * every reconnect (the list is re-sent by itself). Users you share no conversation with are `denied`.
   */
  watchPresence(userIds: readonly string[]): Promise<PresenceResult> {
    const bad = userIds.find((id) => !isId(id));
    if (bad !== undefined) return Promise.reject(new ConfabError('bad_request', `not a user id: ${JSON.stringify(bad)}`));
    return this.presence.watch(userIds);
  }

  /** The last known presence of a watched user. */
  presenceOf(userId: string): Presence | undefined {
    return this.presence.of(userId);
  }

  /**
   * Tells the other members you are typing (call it on every keystroke: it is throttled to one
   * frame per `limits.typingIntervalMs / 2`) or stopped (`false`, always sent). Sending a message
   * ends it by itself. Ephemeral: dropped when not connected. True when a frame went out.
   */
  typing(conversationId: string, typing = true): boolean {
    if (!isId(conversationId)) throw new TypeError(`not a conversation id: ${JSON.stringify(conversationId)}`);
    return this.typists.send(conversationId, typing);
  }

  /** Members typing in a conversation now (indicators expire by themselves; a message from the user ends theirs). */
  typingUsers(conversationId: string): TypingUser[] {
    return this.typists.users(conversationId);
  }

  // ---- connection events -------------------------------------------------------------

  private onWelcome(welcome: Welcome): void {
    this.lastWelcome = welcome;
    this.limits = welcome.limits;
    // The server limits each connection and each user (all devices and REST together).
    const l = welcome.limits;
    const pacing = clientPacing(Math.min(l.sendsPerSecond, l.userSendsPerSecond), Math.min(l.sendBurst, l.userSendBurst));
    this.bucket.configure(pacing.rate, pacing.capacity);
    this.tracker.connected(this.helloIds);
    // A hello catch-up the server never finishes must not leave its conversation stuck.
    this.helloTimer = setTimer(() => this.tracker.expireHello(), this.requestTimeoutMs);
    this.outbox.start();
    this.requests.start();
    this.presence.connected();
    this.receiptSender.connected();
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
    this.receiptSender.disconnected();
    this.tracker.disconnected();
  }

  private onFinished(error: ConfabError): void {
    this.unsubscribeNetwork?.();
    this.unsubscribeNetwork = undefined;
    const closed = error.code === 'closed' ? error : new ConfabError('closed', `client closed: ${error.message}`, { cause: error });
    this.outbox.failAll(closed);
    this.requests.failAll(closed);
    this.typists.clear();
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
        return this.emit('readState', this.book.setReadState(frame.conversationId, frame.seq, frame.unread));
      case 'receipts':
        return this.emit('receipts', this.book.setReceipts(frame.conversationId, frame.delivered, frame.read));
      case 'presence':
        this.presence.frame(frame);
        if (frame.id !== undefined) this.requests.answer(frame.id, frame);
        return;
      case 'typing': return this.typists.frame(frame);
      case 'conversation': return this.onConversation(frame);
      case 'error': return this.onError(frame);
    }
  }

  private onConversation(frame: ServerFrameOf<'conversation'>): void {
    const { type: _type, ...change } = frame;
    const id = change.conversationId;
    if (change.change === 'removed') {
      this.tracker.untrack(id);
      this.receiptSender.forget(id);
      this.book.forget(id);
      this.typists.forget(id);
    } else if (change.conversation) {
      if (change.change === 'added') this.tracker.join(id, change.conversation.lastSeq);
      this.book.conversation(change.conversation);
    }
    this.emit('conversation', change);
  }

  /** An entry reaches the application: acknowledge it soon, emit it, end its sender's typing. */
  private delivered(message: Message): void {
    // Marked before the event, so a listener that closes the client still flushes this receipt.
    // Our own entries need no receipt: sending moved our cursors already.
    if (this.autoReceipts && message.sender !== this.lastWelcome?.userId) this.receiptSender.delivered(message.conversationId);
    this.emit('message', message);
    this.typists.message(message);
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
