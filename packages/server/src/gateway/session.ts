// One client connection, independent of the transport: authentication by `hello`, frame
// validation, request handling, and the per-conversation delivery streams that splice the
// store catch-up and the live feed together without gap or duplicate (see
// docs/architecture.md, "Offline sync and the catch-up race").
import {
  CLIENT_FRAME_TYPES, CLOSE_CODES, ClientFrame, FRAME_RATES, PROTOCOL_VERSION, issuesOf,
  type ClientFrameOf, type ConversationId, type DeviceId, type Limits, type Message, type MessageId, type ServerFrame, type UserId,
} from '@confab/protocol';
import type { Logger } from 'pino';
import { AppError, toAppError } from '../errors.js';
import { requireMember } from '../core/access.js';
import type { AuthService } from '../core/auth.js';
import type { ConversationService } from '../core/conversations.js';
import type { Fanout } from '../core/fanout.js';
import type { MessageService } from '../core/messages.js';
import type { PresenceService, PresenceWatcher } from '../core/presence.js';
import type { ReceiptService } from '../core/receipts.js';
import { fitting } from '../core/pages.js';
import { TokenBucket } from '../core/rate-limit.js';
import type { TypingService } from '../core/typing.js';
import type { UserBudgets } from '../core/user-limits.js';
import type { SessionRegistry } from '../ports/sessions.js';
import type { Store } from '../ports/store.js';
import type { Metrics } from '../metrics.js';
import { Coalescer } from './coalescer.js';
import type { LocalHub } from './hub.js';

/** What the session needs from a transport (the ws adapter implements it). */
export interface Transport {
  /** Queues a text frame; resolves once it has been written out (used to pace catch-up pages). */
  send(text: string): Promise<void>;
  /** Queues a text frame without waiting for it (answers, per-connection pushes). */
  push(text: string): void;
  /** Queues a frame that goes unchanged to many connections (live entries, receipts): the hot path. */
  pushShared(frame: SharedFrame): void;
  /** Closes with a close frame; the socket is gone within a short grace whether or not the peer answers. */
  close(code: number, reason: string): void;
  /** Bytes written to the client and not yet shown read, plus those waiting in the node for it. */
  backlog(): number;
  /** `hello` is over (authenticated or not): the connection no longer counts as unauthenticated. */
  helloDone(): void;
}

/**
 * A server frame sent unchanged to every recipient connection on this node: serialized once
 * (on first use), and encoded once by the transport, which keeps its wire bytes in `wire`.
 */
export class SharedFrame {
  #text: string | undefined;
  /** The transport's encoding of this frame (for WebSocket: the whole frame, header included). */
  wire: Uint8Array | undefined;
  constructor(readonly type: ServerFrame['type'], private readonly make: () => ServerFrame) {}
  get text(): string {
    return (this.#text ??= JSON.stringify(this.make()));
  }
}

export interface GatewayContext {
  nodeId: string;
  limits: Limits;
  store: Store;
  auth: AuthService;
  conversations: ConversationService;
  messages: MessageService;
  receipts: ReceiptService;
  presence: PresenceService;
  typing: TypingService;
  /** Per-user budgets (requests here; sends are charged by the message service). */
  budgets: UserBudgets;
  /** Node-wide admission of new sessions, taken once a `hello` token checks out (absent: no cap). */
  admission?: TokenBucket | undefined;
  /** The connection's outbound budget (MAX_OUTBOUND_BYTES): past three quarters of it unread, no more work is done for it. */
  maxOutboundBytes: number;
  fanout: Fanout;
  hub: LocalHub;
  sessions: SessionRegistry;
  log: Logger;
  metrics: Metrics;
  /** Most authenticated connections per user on this node (0 or absent: no cap). */
  maxConnectionsPerUser?: number;
}

/** Delivery state of one conversation on this connection. */
interface Stream {
  /** Highest seq sent to the client; the next frame sent is always delivered + 1. */
  delivered: number;
  /** A store read is catching the client up; live entries are only noted meanwhile. */
  filling: boolean;
  /** Highest live seq seen while filling: the fill does not stop before reaching it. */
  liveMax: number;
  /** `sync` requests answered by the sync.done that ends the current fill. */
  waiters: string[];
  /**
   * The user's read cursor and unread count as of `delivered`, counted on from each entry this
   * connection delivers live; absent while unknown (the store is asked, up to `delivered`).
   */
  unread?: { readSeq: number; count: number } | undefined;
}

type Auth = { userId: UserId; deviceId: DeviceId; username: string; expiresAt: number };

const MAX_PENDING_BEFORE_OPEN = 100;
/** Unread counts changed by new or deleted entries are pushed at most this often. */
const UNREAD_PUSH_MS = 500;
/**
 * Requests that read the store (history, sync, presence.watch, read) run at most this many at a
 * time per connection; up to MAX_QUEUED more wait their turn, in order, and any more are refused.
 * A burst of 120 `history` frames costs a few pages' worth of memory at a time, not 120 pages.
 */
const MAX_IN_FLIGHT = 4;
const MAX_QUEUED = 32;
/** A conversation's `updated` frame (a new view of it) goes to a connection at most this often: 200 renames cost each member a few views, not 200. */
const CONVERSATION_PUSH_MS = 1000;

export class ClientSession implements PresenceWatcher {
  readonly id: string;
  #state: 'hello' | 'authenticating' | 'open' | 'closed' = 'hello';
  /** The node is draining: mutations are refused (`unavailable`) so the commits in flight can finish. */
  #draining = false;
  #auth: Auth | undefined;
  readonly #streams = new Map<ConversationId, Stream>();
  /** Per-connection budgets (protocol FRAME_RATES). */
  readonly #sends: TokenBucket;
  readonly #requests: TokenBucket;
  #badFrames = 0;
  #pending: string[] = [];
  #helloTimer: NodeJS.Timeout | undefined;
  /** Closes the connection (4002) when its access token expires: a reconnect re-authenticates. */
  #expiryTimer: NodeJS.Timeout | undefined;
  /** Settles after every mutation this connection submitted so far (edits wait for earlier sends). */
  #writes: Promise<unknown> = Promise.resolve();
  /** Presence changes of watched users, sent batched. */
  readonly #presenceOut: Coalescer<UserId>;
  /** What this connection last told its client, per watched user. */
  readonly #presenceSent = new Map<UserId, string>();
  #watchesInFlight = 0;
  #presenceHeld: UserId[] = [];
  /** Conversations whose unread count may have changed. */
  readonly #unreadOut: Coalescer<ConversationId>;
  readonly #unreadSent = new Map<ConversationId, string>();
  /** Store-reading requests running, and those waiting for one of them to end. */
  #inFlight = 0;
  readonly #queued: (() => void)[] = [];
  /** Conversations whose view changed (`updated`), sent coalesced. */
  readonly #conversationsOut: Coalescer<ConversationId>;

  constructor(id: string, private readonly transport: Transport, private readonly ctx: GatewayContext) {
    this.id = id;
    this.#sends = new TokenBucket(ctx.limits.sendsPerSecond, ctx.limits.sendBurst);
    this.#requests = new TokenBucket(ctx.limits.requestsPerSecond, ctx.limits.requestBurst);
    this.#helloTimer = setTimeout(() => this.#close('hello_timeout'), ctx.limits.helloTimeoutMs);
    this.#presenceOut = new Coalescer(ctx.limits.presenceIntervalMs, (ids) => this.#flushPresence(ids));
    this.#unreadOut = new Coalescer(UNREAD_PUSH_MS, (ids) => void this.#flushUnread(ids));
    this.#conversationsOut = new Coalescer(CONVERSATION_PUSH_MS, (ids) => { for (const id of ids) this.#sendView(id); });
  }

  get userId(): UserId | undefined {
    return this.#auth?.userId;
  }

  get deviceId(): DeviceId | undefined {
    return this.#auth?.deviceId;
  }

  // ---- input from the transport -------------------------------------------------------

  onText(raw: string): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'authenticating') {
      if (this.#pending.length >= MAX_PENDING_BEFORE_OPEN) return this.#bad(undefined, new AppError('rate_limited', 'Wait for `welcome` before sending more frames.', { retryAfterMs: 100 }));
      this.#pending.push(raw);
      return;
    }
    let data: unknown;
    try {
      data = JSON.parse(raw);
    } catch {
      return this.#bad(undefined, new AppError('bad_json'));
    }
    const id = requestIdOf(data);
    const type = typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as { type?: unknown }).type : undefined;
    if (typeof type !== 'string' || !(CLIENT_FRAME_TYPES as string[]).includes(type)) {
      return this.#bad(id, new AppError('unknown_type', typeof type === 'string' ? `Unknown frame type "${type.slice(0, 40)}".` : 'The frame has no string `type`.'));
    }
    const parsed = ClientFrame.safeParse(data);
    if (!parsed.success) return this.#bad(id, new AppError('bad_request', 'The frame does not match its schema.', { details: issuesOf(parsed.error) }));
    this.ctx.metrics.frameIn(type);
    this.#badFrames = 0;
    if (this.#state === 'open' && this.#auth && parsed.data.type !== 'hello') {
      const refused = this.#charge(parsed.data.type, this.#auth.userId);
      if (refused) return this.#error(id, refused);
    }
    this.#handle(parsed.data);
  }

  /**
   * What a frame costs (protocol FRAME_RATES), taken from this connection's budget and its user's;
   * the refusal when over one, and nothing is done for it then. A client that has not read what
   * was written to it gets no more work done either: it must read first.
   */
  #charge(type: ClientFrame['type'], me: UserId): AppError | undefined {
    const unread = this.#unread();
    if (unread) return unread;
    const rate = FRAME_RATES[type];
    let refused: AppError | undefined;
    if (rate.budget === 'sends') {
      const wait = this.#sends.take(rate.cost);
      if (wait > 0) refused = new AppError('rate_limited', `At most ${this.ctx.limits.sendsPerSecond} sends per second; retry in ${wait} ms.`, { retryAfterMs: wait });
    } else if (rate.budget === 'requests') {
      const wait = this.#requests.wait(rate.cost);
      if (wait > 0) refused = new AppError('rate_limited', `At most ${this.ctx.limits.requestsPerSecond} requests per second per connection; retry in ${wait} ms.`, { retryAfterMs: wait });
      else {
        try {
          this.ctx.budgets.charge('requests', me, rate.cost);
          this.#requests.take(rate.cost);
        } catch (err) {
          refused = toAppError(err);
        }
      }
    }
    if (refused) this.ctx.metrics.rateLimited.labels(rate.budget).inc();
    return refused;
  }

  onBinary(): void {
    this.#bad(undefined, new AppError('binary_not_supported'));
  }

  onOversize(bytes: number): void {
    this.#bad(undefined, new AppError('frame_too_large', `The frame is ${bytes} bytes; the limit is ${this.ctx.limits.maxFrameBytes}.`));
  }

  onInvalidUtf8(): void {
    this.#bad(undefined, new AppError('invalid_utf8'));
  }

  /** The transport closed (either side). */
  onClosed(): void {
    if (this.#state === 'closed') return;
    const wasOpen = this.#auth !== undefined && this.#state === 'open';
    this.#state = 'closed';
    clearTimeout(this.#helloTimer);
    clearTimeout(this.#expiryTimer);
    this.#presenceOut.stop();
    this.#unreadOut.stop();
    this.#conversationsOut.stop();
    this.ctx.presence.unwatch(this);
    if (wasOpen && this.#auth) {
      this.ctx.presence.disconnect(this.#auth.userId, this.id);
      this.ctx.hub.remove(this.#auth.userId, this);
      this.ctx.sessions.unregister(this.#auth.userId, this.id, this.ctx.nodeId).catch((err: unknown) => this.ctx.log.warn({ err }, 'session unregister failed'));
    }
  }

  // ---- input from the hub (live traffic) ----------------------------------------------

  /** A committed entry from the bus; `frame` is its `message` frame, shared by the node's recipients. */
  deliverLive(m: Message, frame?: SharedFrame): void {
    if (this.#state !== 'open') return;
    const cid = m.conversationId as ConversationId;
    let s = this.#streams.get(cid);
    if (!s) {
      // First entry of a conversation this device did not ask to catch up: live from here.
      s = { delivered: m.seq - 1, filling: false, liveMax: 0, waiters: [] };
      this.#streams.set(cid, s);
    }
    // Unread counts move with new messages and deletes; told after the entry itself.
    const counts = m.kind !== 'edit';
    if (s.filling) {
      s.liveMax = Math.max(s.liveMax, m.seq);
      if (counts) this.#unreadOut.add(cid);
      return;
    }
    if (m.seq <= s.delivered) return;
    if (m.seq === s.delivered + 1) {
      s.delivered = m.seq;
      if (s.unread) countUnread(s.unread, s, m, this.#auth!.userId);
      if (frame) {
        this.#sendShared(frame);
      } else {
        this.#sendNow({ type: 'message', message: m });
      }
      if (counts) this.#unreadOut.add(cid);
      return;
    }
    // A gap: an earlier entry was missed (or is still on its way); the store has it.
    this.ctx.metrics.gapFills.inc();
    s.liveMax = m.seq;
    void this.#fill(cid, s);
    if (counts) this.#unreadOut.add(cid);
  }

  conversationChanged(change: 'added' | 'updated' | 'removed', conversationId: ConversationId): void {
    if (this.#state !== 'open' || !this.#auth) return;
    if (change === 'removed') {
      this.#conversationsOut.delete(conversationId);
      this.#streams.delete(conversationId);
      this.#sendNow({ type: 'conversation', change, conversationId });
      return;
    }
    if (change === 'updated') {
      this.#conversationsOut.add(conversationId);
      return;
    }
    this.#conversationsOut.delete(conversationId);
    this.#sendView(conversationId, 'added');
  }

  /** Sends the conversation as the user sees it now (`updated`, or `added`); `removed` if they are no longer in it. */
  #sendView(conversationId: ConversationId, change: 'added' | 'updated' = 'updated'): void {
    if (this.#state !== 'open' || !this.#auth) return;
    this.ctx.conversations.get(this.#auth.userId, conversationId).then(
      (conversation) => this.#sendNow({ type: 'conversation', change, conversationId, conversation }),
      (err: unknown) => {
        // Removed again before we could read it: say so.
        if (err instanceof AppError) this.#sendNow({ type: 'conversation', change: 'removed', conversationId });
        else this.ctx.log.warn({ err }, 'conversation view failed');
      },
    );
  }

  readChanged(conversationId: ConversationId, seq: number, unread: number): void {
    if (this.#state !== 'open') return;
    // Counted by the store at some point of the log, maybe not where this stream stands: ask again.
    const s = this.#streams.get(conversationId);
    if (s) s.unread = undefined;
    this.#unreadSent.set(conversationId, `${seq}:${unread}`);
    this.#sendNow({ type: 'read.state', conversationId, seq, unread });
  }

  /** The receipt aggregate moved; `frame` is the `receipts` frame every member on this node gets. */
  receiptsChanged(frame: SharedFrame): void {
    if (this.#state !== 'open') return;
    this.#sendShared(frame);
  }

  typingChanged(conversationId: ConversationId, userId: UserId, username: string, typing: boolean): void {
    if (this.#state === 'open' && userId !== this.#auth?.userId) {
      this.#sendNow({ type: 'typing', conversationId, userId, username, typing, expiresInMs: this.ctx.limits.typingTtlMs });
    }
  }

  presenceChanged(userId: UserId): void {
    if (this.#state === 'open') this.#presenceOut.add(userId);
  }

  /** The node is shutting down: from now on sends, edits and deletes get `unavailable` (clients resend elsewhere). */
  drain(): void {
    this.#draining = true;
  }

  /** Closes with a registry close code (e.g. on shutdown). */
  close(name: keyof typeof CLOSE_CODES): void {
    this.#close(name);
  }

  // ---- frames -------------------------------------------------------------------------

  #handle(frame: ClientFrame): void {
    if (frame.type === 'hello') {
      if (this.#state === 'open') return this.#error(undefined, new AppError('already_authenticated'));
      void this.#hello(frame);
      return;
    }
    if (this.#state !== 'open' || !this.#auth) return this.#error('id' in frame ? frame.id : undefined, new AppError('not_authenticated', 'Send `hello` with an access token first.'));
    const me = this.#auth.userId;
    switch (frame.type) {
      case 'send':
      case 'edit':
      case 'delete':
        return this.#mutate(frame, me);
      case 'read':
        return this.#bounded(frame.id, async () => {
          await this.ctx.conversations.markRead(me, frame.conversationId as ConversationId, frame.seq, false);
          this.#sendNow({ type: 'ok', id: frame.id });
        });
      case 'history':
        return this.#bounded(frame.id, async () => {
          const page = await this.ctx.messages.history(me, frame.conversationId as ConversationId, frame);
          await this.#send({ type: 'history.result', id: frame.id, conversationId: frame.conversationId, ...page });
        });
      case 'sync':
        return this.#bounded(frame.id, async () => {
          const cid = frame.conversationId as ConversationId;
          const { conversation } = await requireMember(this.ctx.store, cid, me);
          if (frame.after > conversation.lastSeq) throw new AppError('seq_out_of_range', `The last seq of this conversation is ${conversation.lastSeq}.`);
          let s = this.#streams.get(cid);
          if (!s) this.#streams.set(cid, (s = { delivered: frame.after, filling: false, liveMax: 0, waiters: [] }));
          s.waiters.push(frame.id);
          // The client holds only up to `after`: resend from there (it drops what it has).
          s.delivered = Math.min(s.delivered, frame.after);
          if (!s.filling) await this.#fill(cid, s);
        });
      case 'ping':
        this.#sendNow({ type: 'pong', ...(frame.id !== undefined ? { id: frame.id } : {}), time: Date.now() });
        return;
      case 'received': {
        const done = this.ctx.receipts.received(me, frame.conversationId as ConversationId, frame.seq);
        done.catch((err: unknown) => this.#error(frame.id, toAppError(err)));
        return;
      }
      case 'typing': {
        const cid = frame.conversationId as ConversationId;
        this.ctx.typing.set({ userId: me, username: this.#auth.username }, cid, frame.typing, () => this.#error(undefined, new AppError('forbidden', 'You are not a member of this conversation.')));
        return;
      }
      case 'presence.set':
        this.ctx.presence.setStatus(me, this.id, frame.status);
        return;
      case 'presence.watch':
        return this.#bounded(frame.id, async () => {
          const wanted = [...new Set(frame.userIds)] as UserId[];
          const allowed = new Set(await this.ctx.store.sharedWith(me, wanted));
          // Changes that arrive while the answer is being put together wait for it, so the
          // client never applies a change and then an older state from the answer.
          this.#watchesInFlight++;
          try {
            const users = await this.ctx.presence.watch(this, wanted.filter((u) => allowed.has(u)));
            this.#presenceSent.clear();
            for (const e of users) this.#presenceSent.set(e.userId as UserId, `${e.status}:${e.lastSeen}`);
            this.#sendNow({ type: 'presence', id: frame.id, users, denied: wanted.filter((u) => !allowed.has(u)) });
          } finally {
            this.#watchesInFlight--;
            if (this.#watchesInFlight === 0) for (const id of this.#presenceHeld.splice(0)) this.#presenceOut.add(id);
          }
        });
    }
  }

  #flushPresence(ids: UserId[]): void {
    if (this.#watchesInFlight > 0) {
      this.#presenceHeld.push(...ids);
      return;
    }
    const users = [];
    for (const id of ids) {
      const e = this.ctx.presence.entryNow(id);
      const key = `${e.status}:${e.lastSeen}`;
      if (this.#presenceSent.get(id) === key) continue; // changed and changed back within the interval
      this.#presenceSent.set(id, key);
      users.push(e);
    }
    if (users.length > 0) this.#sendNow({ type: 'presence', users });
  }

  /**
   * Pushes the unread counts that changed. Counts are kept per stream as entries are delivered;
   * the store is asked only where the count is not known yet (new stream, after a catch-up, a
   * read on another device, a delete), as of the seq the stream has delivered.
   */
  async #flushUnread(ids: ConversationId[]): Promise<void> {
    if (this.#state !== 'open' || !this.#auth) return;
    const ask = new Map<ConversationId, number>();
    for (const cid of ids) {
      const s = this.#streams.get(cid);
      if (!s) continue;
      if (s.filling) this.#unreadOut.add(cid); // counted once the catch-up is done
      else if (s.unread) this.#pushUnread(cid, s.unread.readSeq, s.unread.count);
      else ask.set(cid, s.delivered);
    }
    if (ask.size === 0) return;
    try {
      const counts = await this.ctx.store.unreadCounts(this.#auth.userId, ask);
      if (this.#state !== 'open') return;
      for (const [cid, c] of counts) {
        const s = this.#streams.get(cid);
        if (!s || s.filling || s.unread) continue;
        if (s.delivered !== ask.get(cid)) {
          this.#unreadOut.add(cid); // moved on while the store counted: ask again next time
          continue;
        }
        s.unread = { readSeq: c.readSeq, count: c.unread };
        this.#pushUnread(cid, c.readSeq, c.unread);
      }
    } catch (err) {
      this.ctx.log.warn({ err, conn: this.id }, 'unread push failed');
    }
  }

  #pushUnread(cid: ConversationId, seq: number, unread: number): void {
    const key = `${seq}:${unread}`;
    if (this.#unreadSent.get(cid) === key) return;
    this.#unreadSent.set(cid, key);
    this.#sendNow({ type: 'read.state', conversationId: cid, seq, unread });
  }

  #mutate(frame: ClientFrameOf<'send'> | ClientFrameOf<'edit'> | ClientFrameOf<'delete'>, me: UserId): void {
    if (this.#draining) return this.#error(frame.id, new AppError('unavailable', 'This node is shutting down; nothing was committed. Resend with the same client id after reconnecting.'));
    const cid = frame.conversationId as ConversationId;
    let op: Promise<{ message: Message; duplicate: boolean }>;
    if (frame.type === 'send') {
      // Submitted synchronously, so a connection's sends are committed in the order received.
      op = (async () => this.ctx.messages.send(me, cid, frame.clientId, frame.text))();
    } else {
      const after = this.#writes;
      op = after.then(() => frame.type === 'edit'
        ? this.ctx.messages.edit(me, cid, frame.messageId as MessageId, frame.clientId, frame.text)
        : this.ctx.messages.delete(me, cid, frame.messageId as MessageId, frame.clientId));
    }
    this.#writes = op.catch(() => undefined);
    const started = performance.now();
    this.#request(frame.id, async () => {
      const r = await op;
      this.#sendNow({ type: 'ack', id: frame.id, message: r.message, duplicate: r.duplicate });
      this.ctx.metrics.sendToAck.observe((performance.now() - started) / 1000);
    });
  }

  async #hello(frame: ClientFrameOf<'hello'>): Promise<void> {
    if (frame.v !== PROTOCOL_VERSION) {
      this.#error(undefined, new AppError('unsupported_version', `This server speaks protocol v${PROTOCOL_VERSION}.`));
      this.transport.helloDone();
      return this.#close('unsupported_version');
    }
    this.#state = 'authenticating';
    let auth: Auth;
    try {
      auth = await this.ctx.auth.authenticate(frame.token);
    } catch (err) {
      const e = toAppError(err);
      this.#state = 'hello';
      this.transport.helloDone();
      this.#error(undefined, e);
      if (e.code === 'token_expired') return this.#close('token_expired');
      if (e.code === 'invalid_token') return this.#close('auth_failed');
      this.#close('going_away');
      return;
    }
    if (this.#state !== 'authenticating') return; // closed meanwhile
    this.transport.helloDone();
    // Admission control counts only connections whose token checked out: a flood of upgrades
    // without one (or with a forged one) cannot use up the node's allowance of new sessions.
    if (this.ctx.admission && this.ctx.admission.take() > 0) return this.#close('try_again_later');
    // Checked and counted in one synchronous step, so concurrent hellos cannot both slip in.
    const cap = this.ctx.maxConnectionsPerUser ?? 0;
    if (cap > 0 && this.ctx.hub.countOf(auth.userId) >= cap) {
      this.#error(undefined, new AppError('rate_limited', `At most ${cap} connections per user on this node; close one, or retry later.`, { retryAfterMs: 1000 }));
      return this.#close('too_many_connections');
    }
    clearTimeout(this.#helloTimer);
    this.#auth = auth;
    this.#state = 'open';
    if (Number.isFinite(auth.expiresAt)) {
      this.#expiryTimer = setTimeout(() => this.#close('token_expired'), Math.min(Math.max(0, auth.expiresAt - Date.now()), 2 ** 31 - 1));
      this.#expiryTimer.unref();
    }
    // Streams exist before anything can be delivered, so no live entry slips past a catch-up.
    const cursors = Object.entries(frame.cursors ?? {}) as [ConversationId, number][];
    for (const [cid, seq] of cursors) this.#streams.set(cid, { delivered: seq, filling: true, liveMax: 0, waiters: [] });
    this.ctx.hub.add(auth.userId, this);
    this.ctx.presence.connect(auth.userId, this.id);
    try {
      // Registered before the first store read: from here on every commit reaches us live.
      await this.ctx.sessions.register(auth.userId, auth.deviceId, this.id, this.ctx.nodeId);
    } catch (err) {
      this.ctx.log.warn({ err, conn: this.id }, 'session register failed: live delivery from other nodes may lag until the next gap fill');
    }
    if (this.#state !== 'open') {
      // Closed while registering: onClosed's unregister may have run first; undo ours.
      this.ctx.sessions.unregister(auth.userId, this.id, this.ctx.nodeId).catch(() => undefined);
      return;
    }
    // Conversations without a cursor are live from here: everything committed after this
    // read reaches this device, in order, even if another node's entry overtakes an earlier one.
    try {
      for (const [cid, last] of await this.ctx.store.lastSeqsForUser(auth.userId)) {
        if (!this.#streams.has(cid)) this.#streams.set(cid, { delivered: last, filling: false, liveMax: 0, waiters: [] });
      }
    } catch (err) {
      this.ctx.log.warn({ err, conn: this.id }, 'could not read the conversations of a new connection');
    }
    if (this.#state !== 'open') return;
    this.#sendNow({ type: 'welcome', v: PROTOCOL_VERSION, userId: auth.userId, username: auth.username, deviceId: auth.deviceId, nodeId: this.ctx.nodeId, limits: this.ctx.limits });
    const pending = this.#pending;
    this.#pending = [];
    for (const raw of pending) this.onText(raw);
    for (const [cid] of cursors) {
      if (this.#state !== 'open') return;
      const s = this.#streams.get(cid);
      if (!s) continue;
      try {
        const [member, conversation] = await Promise.all([this.ctx.store.member(cid, auth.userId), this.ctx.store.conversation(cid)]);
        if (!member || !conversation) {
          this.#streams.delete(cid);
          this.#sendNow({ type: 'conversation', change: 'removed', conversationId: cid });
          continue;
        }
        // A cursor past the end (a device that saw entries a restored store no longer has)
        // restarts at the end; sync.done tells the device where it now stands.
        s.delivered = Math.min(s.delivered, conversation.lastSeq);
        s.filling = false;
        await this.#fill(cid, s);
      } catch (err) {
        // The catch-up of this conversation failed before it began: forget the stream, so the
        // conversation is live again from its next entry and the client can ask with `sync`.
        if (this.#streams.get(cid) === s && s.filling) this.#streams.delete(cid);
        const e = toAppError(err);
        this.#error(undefined, new AppError(e.code, e.message, { ...e.extra, details: [{ path: `cursors.${cid}`, message: 'catch-up failed; send `sync` to retry' }] }));
      }
    }
  }

  /**
   * Sends everything after `s.delivered` from the store in pages, then switches the stream
   * to live. Live entries seen meanwhile only raise `liveMax`, and the loop does not end
   * before it has read past them: the switch to live happens in the same synchronous step
   * as the last check, so no entry can fall between store and live feed.
   */
  async #fill(cid: ConversationId, s: Stream): Promise<void> {
    if (s.filling) return;
    s.filling = true;
    s.unread = undefined; // pages carry entries as they are now (deleted ones blanked): ask the store after
    try {
      for (;;) {
        const read = (await this.ctx.store.readAfter(cid, s.delivered, this.ctx.limits.maxPageSize)).filter((m) => m.seq > s.delivered);
        // At most maxPageBytes a page: the rest of what was read comes in the next one.
        const page = read.slice(0, fitting(read, this.ctx.limits.maxPageBytes, 'start'));
        if (this.#state !== 'open') return;
        if (this.#streams.get(cid) !== s) {
          // Removed from the conversation meanwhile: the `conversation` frame said so.
          for (const id of s.waiters.splice(0)) this.#error(id, new AppError('forbidden', 'You are no longer a member of this conversation.'));
          return;
        }
        if (page.length > 0) {
          s.delivered = page[page.length - 1]!.seq;
          await this.#send({ type: 'sync.page', conversationId: cid, messages: page });
        }
        if (read.length < this.ctx.limits.maxPageSize && page.length === read.length && s.liveMax <= s.delivered) break;
      }
    } catch (err) {
      s.filling = false;
      const waiters = s.waiters.splice(0);
      const e = toAppError(err);
      if (waiters.length === 0) this.#error(undefined, e);
      for (const id of waiters) this.#error(id, e);
      return;
    }
    s.filling = false;
    s.liveMax = 0;
    const waiters = s.waiters.splice(0);
    if (waiters.length === 0) this.#sendNow({ type: 'sync.done', conversationId: cid, seq: s.delivered });
    for (const id of waiters) this.#sendNow({ type: 'sync.done', conversationId: cid, seq: s.delivered, id });
  }

  // ---- output -------------------------------------------------------------------------

  #request(id: string, fn: () => Promise<void>, done?: () => void): void {
    void fn().catch((err: unknown) => {
      const e = toAppError(err);
      if (e.code === 'internal') this.ctx.log.error({ err, conn: this.id }, 'request failed');
      this.#error(id, e);
    }).finally(done);
  }

  /** The refusal for a connection with more than three quarters of its outbound budget unread. */
  #unread(): AppError | undefined {
    const backlog = this.transport.backlog();
    if (backlog <= (this.ctx.maxOutboundBytes * 3) / 4) return undefined;
    this.ctx.metrics.rateLimited.labels('unread').inc();
    return new AppError('rate_limited', `${backlog} bytes sent to this connection are not read yet; read them first.`, { retryAfterMs: 500 });
  }

  /**
   * A request that reads the store, run when fewer than MAX_IN_FLIGHT of this connection's are;
   * queued otherwise (refused past MAX_QUEUED). When its turn comes, a connection that has not
   * read what was written to it gets a refusal instead of the work.
   */
  #bounded(id: string, fn: () => Promise<void>): void {
    const run = () => {
      if (this.#state !== 'open') return;
      const refused = this.#unread();
      if (refused) {
        this.#error(id, refused);
        return this.#next();
      }
      this.#inFlight++;
      this.#request(id, fn, () => {
        this.#inFlight--;
        this.#next();
      });
    };
    if (this.#inFlight < MAX_IN_FLIGHT) return run();
    if (this.#queued.length >= MAX_QUEUED) {
      this.ctx.metrics.rateLimited.labels('requests').inc();
      return this.#error(id, new AppError('rate_limited', `At most ${MAX_IN_FLIGHT + MAX_QUEUED} requests may wait for their answers on one connection; wait for the answers.`, { retryAfterMs: 250 }));
    }
    this.#queued.push(run);
  }

  #next(): void {
    if (this.#inFlight < MAX_IN_FLIGHT) this.#queued.shift()?.();
  }

  #bad(id: string | undefined, e: AppError): void {
    this.ctx.metrics.frameIn('invalid');
    this.#error(id, e);
    if (++this.#badFrames >= this.ctx.limits.maxBadFrames) this.#close('protocol_violation');
  }

  #error(id: string | undefined, e: AppError): void {
    this.ctx.metrics.error(e.code);
    this.#sendNow({ type: 'error', ...(id !== undefined ? { id } : {}), ...e.toBody() });
  }

  #sendNow(frame: ServerFrame): void {
    if (this.#state === 'closed') return;
    this.ctx.metrics.frameOut(frame.type);
    this.transport.push(JSON.stringify(frame));
  }

  #sendShared(frame: SharedFrame): void {
    if (this.#state === 'closed') return;
    this.ctx.metrics.frameOut(frame.type);
    this.transport.pushShared(frame);
  }

  #send(frame: ServerFrame): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve();
    this.ctx.metrics.frameOut(frame.type);
    if (frame.type === 'sync.page') this.ctx.metrics.catchUpPages.inc();
    return this.transport.send(JSON.stringify(frame));
  }

  #close(name: keyof typeof CLOSE_CODES): void {
    if (this.#state === 'closed') return;
    const { code } = CLOSE_CODES[name];
    this.transport.close(code, name);
    this.onClosed();
  }
}

/**
 * Moves a stream's known unread count past the entry it just delivered (`s.delivered` is its
 * seq), by the store's rule: others' messages after the read cursor count, one's own message
 * marks everything before it read, a deleted unread message stops counting. A delete's target
 * may or may not have counted (the entry does not say whose it was): the count becomes unknown.
 */
function countUnread(u: { readSeq: number; count: number }, s: Stream, m: Message, me: UserId): void {
  if (m.kind === 'message') {
    if (m.sender === me) {
      u.readSeq = Math.max(u.readSeq, m.seq);
      u.count = 0;
    } else if (m.seq > u.readSeq) {
      u.count++;
    }
  } else if (m.kind === 'delete' && !(m.target && m.target.seq <= u.readSeq)) {
    s.unread = undefined;
  }
}

function requestIdOf(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const id = (data as { id?: unknown }).id;
  return typeof id === 'string' && id.length > 0 && id.length <= 64 ? id : undefined;
}
