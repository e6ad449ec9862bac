// The app's state and everything that talks to the server: one ConfabApi (REST) and one
// ConfabClient (WebSocket) per signed-in user. Components read `store.state` and re-render on
// `subscribe`; they change things only through the methods here.
import { ConfabApi, ConfabClient, ConfabError } from '@confab/sdk';
import type { ConnectionState, Conversation, Member, Message, Presence, Session, TypingUser } from '@confab/sdk';
import { claimDevice, forgetSession, lastDevice, loadOutbox, loadSession, releaseDevice, saveOutbox, saveSession, tabDevice } from './persist.js';
import type { QueuedSend } from './persist.js';

/** History page size when opening a conversation or scrolling up. */
const PAGE = 50;

/** One conversation as the app holds it. */
export interface Thread {
  conv: Conversation;
  /** `message` entries in seq order (edits and deletes applied); only once `loaded`. */
  messages: Message[];
  loaded: boolean;
  loading: boolean;
  /** Older history exists before `oldestSeq`. */
  hasMore: boolean;
  /** Lowest seq of the log entries fetched so far (the next page ends before it). */
  oldestSeq: number;
  error?: string;
}

/** A send the user made that the server has not acknowledged yet. */
export interface PendingSend extends QueuedSend {
  /** Set when the server refused it for good. */
  failed?: string;
}

export interface Receipt {
  delivered: number;
  read: number;
}

export interface State {
  phase: 'starting' | 'signedOut' | 'ready';
  me: { id: string; username: string; deviceId: string } | undefined;
  threads: Map<string, Thread>;
  /** The conversation list has been fetched once. */
  listLoaded: boolean;
  listError: string | undefined;
  connection: ConnectionState;
  /** The browser says it is offline. */
  offline: boolean;
  pending: PendingSend[];
  receipts: Map<string, Receipt>;
  typing: Map<string, TypingUser[]>;
  presence: Map<string, Presence>;
  members: Map<string, Member[]>;
}

type Listener = () => void;

/** The conversations, most recent activity first. */
export function sortedThreads(state: State): Thread[] {
  const at = (t: Thread) => t.conv.lastMessage?.createdAt ?? t.conv.updatedAt;
  return [...state.threads.values()].sort((a, b) => at(b) - at(a));
}

/** Human text of an error from the SDK or the server. */
export function errorText(err: unknown): string {
  if (err instanceof ConfabError) {
    switch (err.code) {
      case 'invalid_credentials': return 'Wrong username or password.';
      case 'username_taken': return 'That username is taken.';
      case 'weak_password': return 'The password needs at least 8 characters.';
      case 'user_not_found': return 'No user with that name.';
      case 'network': return 'Cannot reach the server.';
      case 'rate_limited': return 'Too many requests; try again in a moment.';
      case 'bad_request': return err.details?.[0] ? `${err.details[0].path}: ${err.details[0].message}` : err.message;
      default: return err.message;
    }
  }
  return err instanceof Error ? err.message : String(err);
}

function newClientId(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return `web-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
}

/** Inserts or replaces `m` (a `message` entry) in a seq-ordered list. */
function upsert(list: Message[], m: Message): Message[] {
  let i = list.length;
  while (i > 0 && list[i - 1]!.seq > m.seq) i--;
  if (i > 0 && list[i - 1]!.seq === m.seq) return list.map((x) => (x.seq === m.seq ? m : x));
  return [...list.slice(0, i), m, ...list.slice(i)];
}

/** Applies an `edit` or `delete` entry to the message it targets. */
function applyChange(target: Message, change: Message): Message {
  if (change.kind === 'edit') return { ...target, text: change.text, editedAt: change.createdAt };
  return { ...target, text: '', deletedAt: change.createdAt };
}

export class Store {
  state: State = {
    phase: 'starting', me: undefined, threads: new Map(), listLoaded: false, listError: undefined, connection: 'idle',
    offline: !navigator.onLine, pending: [], receipts: new Map(), typing: new Map(), presence: new Map(), members: new Map(),
  };
  private readonly listeners = new Set<Listener>();
  private api: ConfabApi;
  private client: ConfabClient | undefined;
  private active: string | undefined;
  private scheduled = false;
  private readTimer: ReturnType<typeof setTimeout> | undefined;
  private connectedOnce = false;
  private listing: Promise<void> | undefined;
  /**
   * Edits and deletes that came live, per conversation, while a page of its history was loading,
   * for messages not held yet: the page may hold their targets as they were before.
   */
  private readonly changesWhileLoading = new Map<string, Message[]>();

  constructor(private readonly origin: string) {
    this.api = this.newApi();
    addEventListener('online', () => this.set({ offline: false }));
    addEventListener('offline', () => this.set({ offline: true }));
    document.addEventListener('visibilitychange', () => {
      const visible = document.visibilityState === 'visible';
      if (this.client?.state === 'open') this.client.setPresence(visible ? 'online' : 'away');
      if (visible && this.active) this.markRead(this.active);
    });
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Re-renders once per task, however many changes came in. */
  private changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      for (const l of this.listeners) l();
    });
  }

  private set(patch: Partial<State>): void {
    this.state = { ...this.state, ...patch };
    this.changed();
  }

  private newApi(): ConfabApi {
    return new ConfabApi({ baseUrl: this.origin, onSession: (s) => saveSession(s) });
  }

  // ---- session -------------------------------------------------------------------------

  /**
   * Resumes this tab's device after a reload, or in a new tab the device signed in last (unless
   * another tab is using it); otherwise shows the sign-in screen.
   */
  async boot(): Promise<void> {
    const own = tabDevice();
    const deviceId = own ?? lastDevice();
    const saved = deviceId ? loadSession(deviceId) : undefined;
    if (!deviceId || !saved || !(await claimDevice(deviceId, own ? 2000 : 0))) { this.set({ phase: 'signedOut' }); return; }
    this.api.useSession(saved);
    try {
      await this.api.accessToken();
    } catch (err) {
      // Offline at start: keep the session and try anyway; the client reconnects when it can.
      if (!(err instanceof ConfabError && err.code === 'network')) {
        forgetSession(deviceId);
        releaseDevice();
        this.set({ phase: 'signedOut' });
        return;
      }
    }
    this.start(saved);
  }

  async signIn(username: string, password: string, create: boolean): Promise<void> {
    const session = create ? await this.api.register(username, password, deviceName()) : await this.api.login(username, password, deviceName());
    await claimDevice(session.deviceId, 0);
    this.start(session);
  }

  async signOut(): Promise<void> {
    const deviceId = this.state.me?.deviceId;
    const client = this.client;
    this.client = undefined;
    try {
      await this.api.logout();
    } catch {
      // Offline or already logged out: forgetting the session here is what matters.
    }
    await client?.close();
    if (deviceId) forgetSession(deviceId);
    releaseDevice();
    this.api = this.newApi();
    this.active = undefined;
    this.state = {
      ...this.state, phase: 'signedOut', me: undefined, threads: new Map(), listLoaded: false, listError: undefined, connection: 'idle',
      pending: [], receipts: new Map(), typing: new Map(), presence: new Map(), members: new Map(),
    };
    this.changed();
  }

  private start(session: Session): void {
    const me = { id: session.user.id, username: session.user.username, deviceId: session.deviceId };
    this.connectedOnce = false;
    const client = new ConfabClient({
      url: this.origin,
      getToken: ({ expired }) => this.api.accessToken(expired),
      // A socket over a dead network is noticed within 15 s even when the browser does not say it is offline.
      heartbeatIntervalMs: 10_000,
      heartbeatTimeoutMs: 5_000,
    });
    this.client = client;
    client.on('state', (s) => {
      if (this.client !== client) return;
      this.set({ connection: s.state, offline: !client.online || !navigator.onLine });
      if (s.state === 'open') {
        client.setPresence(document.visibilityState === 'visible' ? 'online' : 'away');
        // After a reconnect: what changed while away (new conversations, receipts).
        if (this.connectedOnce || !this.state.listLoaded) void this.refreshList(false);
        if (this.connectedOnce) {
          for (const id of this.state.receipts.keys()) this.fetchReceipts(id, true);
          // A conversation opened while offline could not load: try again now.
          const open = this.active ? this.state.threads.get(this.active) : undefined;
          if (open && !open.loaded && !open.loading) void this.loadOlder(open.conv.id);
        }
        this.connectedOnce = true;
      }
      if (s.state === 'closed' && s.code === 4001) void this.signOut();
    });
    client.on('message', (m) => this.onMessage(m));
    client.on('readState', (r) => this.patchThread(r.conversationId, (t) => ({ ...t, conv: { ...t.conv, readSeq: r.seq, unread: r.unread } })));
    client.on('receipts', (r) => {
      const receipts = new Map(this.state.receipts);
      receipts.set(r.conversationId, { delivered: r.delivered, read: r.read });
      this.set({ receipts });
    });
    client.on('typing', (c) => {
      const typing = new Map(this.state.typing);
      typing.set(c.conversationId, client.typingUsers(c.conversationId));
      this.set({ typing });
    });
    client.on('presence', (p) => {
      const presence = new Map(this.state.presence);
      presence.set(p.userId, p);
      this.set({ presence });
    });
    client.on('conversation', (c) => {
      if (c.change === 'removed') {
        const threads = new Map(this.state.threads);
        threads.delete(c.conversationId);
        this.set({ threads });
        if (this.active === c.conversationId) location.hash = '#/';
        return;
      }
      if (c.conversation) this.addConversation(c.conversation);
      if (this.state.members.has(c.conversationId)) void this.loadMembers(c.conversationId);
    });
    this.set({ phase: 'ready', me, connection: client.state });
    client.connect().catch((err: unknown) => {
      if (this.client === client && err instanceof ConfabError && !err.retryable) void this.signOut();
    });
    // Sends queued before a reload go out again with their client ids: none is lost, none doubled.
    const queued = loadOutbox(me.deviceId);
    this.set({ pending: queued });
    for (const q of queued) this.transmit(q);
    void this.refreshList(true);
  }

  /** Fetches the conversation list (at start and after each reconnect, for what changed meanwhile); one request at a time. */
  private refreshList(first: boolean): Promise<void> {
    this.listing ??= this.fetchList(first).finally(() => { this.listing = undefined; });
    return this.listing;
  }

  private async fetchList(first: boolean): Promise<void> {
    const client = this.client;
    try {
      const list = await this.api.conversations();
      if (this.client !== client || !client) return;
      const threads = new Map(this.state.threads);
      for (const c of list.conversations) {
        const t = threads.get(c.id);
        threads.set(c.id, t ? { ...t, conv: { ...c, lastMessage: newer(t.conv.lastMessage, c.lastMessage) } } : emptyThread(c));
        client.track(c.id, Math.max(c.lastSeq, client.cursor(c.id) ?? 0));
      }
      this.set({ threads, listLoaded: true, listError: undefined });
      this.watchPeers();
    } catch (err) {
      if (first) this.set({ listError: errorText(err), listLoaded: this.state.listLoaded });
    }
  }

  private addConversation(c: Conversation): void {
    const threads = new Map(this.state.threads);
    const t = threads.get(c.id);
    threads.set(c.id, t ? { ...t, conv: { ...c, lastMessage: newer(t.conv.lastMessage, c.lastMessage) } } : emptyThread(c));
    this.set({ threads });
    this.watchPeers();
  }

  private watchPeers(): void {
    const ids = new Set<string>();
    for (const t of this.state.threads.values()) if (t.conv.peer) ids.add(t.conv.peer.id);
    for (const [id, members] of this.state.members) {
      if (this.state.threads.has(id)) for (const m of members) if (m.userId !== this.state.me?.id) ids.add(m.userId);
    }
    this.client?.watchPresence([...ids]).catch(() => undefined);
  }

  // ---- conversations -------------------------------------------------------------------

  /** The conversation on screen (undefined: the list). Loads its history the first time. */
  open(id: string | undefined): void {
    this.active = id;
    if (!id) return;
    const t = this.state.threads.get(id);
    if (t && !t.loaded && !t.loading) void this.loadOlder(id);
    if (!this.state.receipts.has(id)) this.fetchReceipts(id, false);
    if (t?.conv.kind === 'group' && !this.state.members.has(id)) void this.loadMembers(id);
    this.markRead(id);
  }

  /** Receipts of a conversation over REST (the socket pushes only changes). */
  private fetchReceipts(id: string, replace: boolean): void {
    this.api.receipts(id).then((r) => {
      const held = this.state.receipts.get(id);
      if (held && !replace) return;
      const receipts = new Map(this.state.receipts);
      receipts.set(id, { delivered: Math.max(r.delivered, held?.delivered ?? 0), read: Math.max(r.read, held?.read ?? 0) });
      this.set({ receipts });
    }, () => undefined);
  }

  /** Loads the page of history before what is held (the latest page the first time). */
  async loadOlder(id: string): Promise<void> {
    const t = this.state.threads.get(id);
    if (!t || t.loading || (t.loaded && !t.hasMore)) return;
    this.patchThread(id, (x) => ({ ...x, loading: true, error: undefined }));
    this.changesWhileLoading.delete(id);
    try {
      const page = await this.api.history(id, t.loaded ? { before: t.oldestSeq, limit: PAGE } : { limit: PAGE });
      const changes = this.changesWhileLoading.get(id) ?? [];
      this.patchThread(id, (x) => {
        let messages = x.messages;
        // An entry already held came live while the page loaded: it is at least as new as the page's copy.
        for (const m of page.messages) if (m.kind === 'message' && !messages.some((y) => y.seq === m.seq)) messages = upsert(messages, m);
        // An edit or delete that came live meanwhile may be newer than the page's copy of its
        // target. Each sets the whole outcome, and they came in seq order: applying them all,
        // also those the page had already seen, ends at the latest.
        for (const c of changes) {
          const seq = c.target?.seq;
          const held = messages.find((y) => y.seq === seq);
          if (held) messages = upsert(messages, applyChange(held, c));
        }
        const oldest = page.messages[0]?.seq ?? x.oldestSeq;
        return { ...x, messages, loaded: true, loading: false, hasMore: page.hasMore, oldestSeq: Math.min(oldest, x.loaded ? x.oldestSeq : oldest) };
      });
    } catch (err) {
      // The next load reads the conversation as it is then, changes included.
      this.patchThread(id, (x) => ({ ...x, loading: false, error: errorText(err) }));
    } finally {
      this.changesWhileLoading.delete(id);
    }
  }

  /** Starts (or opens) the 1:1 conversation with `username`; resolves with its id. */
  async startDirect(username: string): Promise<string> {
    const c = await this.api.direct(username.trim().toLowerCase());
    this.addConversation(c);
    this.client?.track(c.id, Math.max(c.lastSeq, this.client.cursor(c.id) ?? 0));
    return c.id;
  }

  /** Creates a group with these members (usernames); resolves with its id. */
  async createGroup(name: string, members: string[]): Promise<string> {
    const c = await this.api.createGroup(name.trim(), members);
    this.addConversation(c);
    this.client?.track(c.id, Math.max(c.lastSeq, this.client.cursor(c.id) ?? 0));
    return c.id;
  }

  async loadMembers(id: string): Promise<void> {
    try {
      const list = await this.api.members(id);
      const members = new Map(this.state.members);
      members.set(id, list);
      this.set({ members });
      this.watchPeers();
    } catch {
      // Shown as "loading" until the next change or reconnect.
    }
  }

  async addMembers(id: string, usernames: string[]): Promise<void> {
    const list = await this.api.addMembers(id, usernames);
    const members = new Map(this.state.members);
    members.set(id, list);
    this.set({ members });
    this.patchThread(id, (t) => ({ ...t, conv: { ...t.conv, memberCount: list.length } }));
    this.watchPeers();
  }

  async removeMember(id: string, userId: string): Promise<void> {
    await this.api.removeMember(id, userId);
    if (userId === this.state.me?.id) {
      const threads = new Map(this.state.threads);
      threads.delete(id);
      this.set({ threads });
      return;
    }
    await this.loadMembers(id);
    this.patchThread(id, (t) => ({ ...t, conv: { ...t.conv, memberCount: this.state.members.get(id)?.length ?? t.conv.memberCount } }));
  }

  // ---- messages ------------------------------------------------------------------------

  /** Sends a message: it shows at once as pending, survives reloads and reconnects, and goes out once. */
  send(conversationId: string, text: string): void {
    const me = this.state.me;
    if (!me || text.trim() === '') return;
    const q: PendingSend = { clientId: newClientId(), conversationId, text, createdAt: Date.now() };
    this.setPending([...this.state.pending, q]);
    this.transmit(q);
  }

  private transmit(q: QueuedSend): void {
    const client = this.client;
    if (!client) return;
    client.send(q.conversationId, q.text, { clientId: q.clientId }).then((m) => {
      if (this.client === client) this.onMessage(m);
    }, (err: unknown) => {
      if (this.client !== client) return;
      this.setPending(this.state.pending.map((p) => (p.clientId === q.clientId ? { ...p, failed: errorText(err) } : p)));
    });
  }

  /** Drops a failed send. */
  discard(clientId: string): void {
    this.setPending(this.state.pending.filter((p) => p.clientId !== clientId));
  }

  edit(conversationId: string, messageId: string, text: string): Promise<void> {
    if (!this.client || text.trim() === '') return Promise.resolve();
    return this.client.edit(conversationId, messageId, text).then((m) => this.onMessage(m));
  }

  remove(conversationId: string, messageId: string): Promise<void> {
    if (!this.client) return Promise.resolve();
    return this.client.delete(conversationId, messageId).then((m) => this.onMessage(m));
  }

  typing(conversationId: string, typing: boolean): void {
    if (this.client?.state === 'open') this.client.typing(conversationId, typing);
  }

  private setPending(pending: PendingSend[]): void {
    const me = this.state.me;
    if (me) saveOutbox(me.deviceId, pending.filter((p) => !p.failed));
    this.set({ pending });
  }

  /** A log entry (live, caught up, or our own ack): update the list and, if loaded, the thread. */
  private onMessage(m: Message): void {
    const t = this.state.threads.get(m.conversationId);
    if (m.sender === this.state.me?.id && this.state.pending.some((p) => p.clientId === m.clientId)) {
      this.setPending(this.state.pending.filter((p) => p.clientId !== m.clientId));
    }
    if (!t) {
      // A conversation we had not heard of (added while this device was away).
      this.api.conversation(m.conversationId).then((c) => this.addConversation(c), () => undefined);
      return;
    }
    const target = m.kind === 'message' ? undefined : m.target;
    if (target && t.loading && !t.messages.some((y) => y.seq === target.seq)) {
      this.changesWhileLoading.set(t.conv.id, [...(this.changesWhileLoading.get(t.conv.id) ?? []), m]);
    }
    this.patchThread(m.conversationId, (x) => {
      let conv = x.conv;
      let messages = x.messages;
      if (m.kind === 'message') {
        if (!conv.lastMessage || m.seq >= conv.lastMessage.seq) conv = { ...conv, lastMessage: m };
        // While the first page loads too: the page may have been read before this entry was committed.
        if (x.loaded || x.loading) messages = upsert(messages, m);
      } else if (target) {
        const held = messages.find((y) => y.seq === target.seq);
        if (held) messages = upsert(messages, applyChange(held, m));
        if (conv.lastMessage?.seq === target.seq) conv = { ...conv, lastMessage: applyChange(conv.lastMessage, m) };
      }
      conv = { ...conv, lastSeq: Math.max(conv.lastSeq, m.seq) };
      return { ...x, conv, messages };
    });
    if (m.conversationId === this.active && m.sender !== this.state.me?.id) this.markRead(m.conversationId);
  }

  /** Marks the open conversation read up to its last entry, when the page is visible. */
  markRead(id: string): void {
    if (document.visibilityState !== 'visible' || this.active !== id) return;
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => {
      const t = this.state.threads.get(id);
      if (!t || this.active !== id || !this.client) return;
      if (t.conv.lastSeq > t.conv.readSeq || t.conv.unread > 0) {
        const seq = t.conv.lastSeq;
        this.patchThread(id, (x) => ({ ...x, conv: { ...x.conv, readSeq: Math.max(x.conv.readSeq, seq), unread: 0 } }));
        this.client.markRead(id, seq).catch(() => undefined);
      }
    }, 150);
  }

  private patchThread(id: string, fn: (t: Thread) => Thread): void {
    const t = this.state.threads.get(id);
    if (!t) return;
    const threads = new Map(this.state.threads);
    threads.set(id, fn(t));
    this.set({ threads });
  }
}

function emptyThread(conv: Conversation): Thread {
  return { conv, messages: [], loaded: false, loading: false, hasMore: true, oldestSeq: conv.lastSeq + 1 };
}

function newer(a: Message | null, b: Message | null): Message | null {
  if (!a) return b;
  if (!b) return a;
  return b.seq >= a.seq ? b : a;
}

function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? 'Firefox' : /Edg\//.test(ua) ? 'Edge' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  return `${browser} (web)`;
}
