// The REST client: one method per route of the protocol's route table, typed bodies in and
// validated bodies out, errors as ConfabError. It can hold the device's session and refresh
// the access token by itself (single-flight: refresh tokens are single use).
import {
  ConversationsResponse, Conversation as ConversationSchema, MeResponse, MembersResponse, MessagesResponse, PresenceResponse, ReadResponse,
  ReceiptsResponse, SendResponse, SessionResponse, User as UserSchema, issuesOf,
} from '@confab/protocol';
import type { Conversation, Member, Session, User } from '@confab/protocol';
import { ConfabError, isErrorCode } from './errors.js';
import { hostFetch, randomId } from './platform.js';
import type {
  ApiOptions, ConversationList, ConversationReceipts, FetchLike, FetchResponseLike, HistoryOptions, HistoryPage, Me, MeSettings,
  PresenceResult, ReadState, SendResult,
} from './types.js';

const NO_BODY: Schema<void> | undefined = undefined;

/** Refresh this long before the access token's announced expiry (clock skew, latency). */
const REFRESH_MARGIN_MS = 30_000;

/** A protocol schema (zod), seen only through what the client uses. */
interface Schema<T> {
  safeParse(data: unknown): { success: true; data: T } | { success: false; error: Parameters<typeof issuesOf>[0] };
}

interface Call<T> {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  path: string;
  body?: unknown;
  auth?: boolean;
  /** Schema of the success body; undefined for answers without one (204). */
  schema: Schema<T> | undefined;
}

/** REST client of a Confab server. */
export class ConfabApi {
  private readonly baseUrl: string;
  private readonly fetchImpl: FetchLike;
  private readonly getAccessToken: ApiOptions['getAccessToken'];
  private readonly onSession: ApiOptions['onSession'];
  private readonly now: () => number;
  private token: string | undefined;
  private current: Session | undefined;
  private expiresAt = Infinity;
  private refreshing: Promise<Session> | undefined;
  private myId: string | undefined;

  /** @param options base URL, fetch and credentials; see {@link ApiOptions}. */
  constructor(options: ApiOptions) {
    const f = options.fetch ?? hostFetch();
    if (!f) throw new TypeError('no fetch implementation: pass options.fetch');
    if (!/^https?:\/\//i.test(options.baseUrl)) throw new TypeError(`baseUrl must be an http(s) URL, got ${JSON.stringify(options.baseUrl)}`);
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.fetchImpl = f;
    this.getAccessToken = options.getAccessToken;
    this.onSession = options.onSession;
    this.now = options.now ?? Date.now;
    this.token = options.token;
  }

  /** The session from the last `register`, `login` or `refresh` (undefined after `logout`). */
  get session(): Session | undefined {
    return this.current;
  }

  /** Uses `session` (e.g. one persisted earlier) for the following calls, as if it had just been returned. */
  useSession(session: Session): void {
    this.adopt(session);
  }

  /** Uses a fixed access token for the following calls (and forgets any held session). */
  setToken(token: string | undefined): void {
    this.token = token;
    this.current = undefined;
    this.expiresAt = Infinity;
  }

  /**
   * A valid access token: the held one, refreshed first when it expires within 30 s or when
   * `forceRefresh` (e.g. the server said `token_expired`). Pass it as `ConfabClient`'s
   * `getToken: ({ expired }) => api.accessToken(expired)`.
   */
  async accessToken(forceRefresh = false): Promise<string> {
    if (this.getAccessToken) {
      const t = await this.getAccessToken();
      if (t) return t;
    } else if (this.current && (forceRefresh || this.now() >= this.expiresAt - REFRESH_MARGIN_MS)) {
      return (await this.refresh()).accessToken;
    }
    if (!this.token) throw new ConfabError('not_authenticated', 'no access token: log in first');
    return this.token;
  }

  // ---- auth ------------------------------------------------------------------------------

  /** Creates an account and logs in its first device; the session is kept for later calls. */
  async register(username: string, password: string, deviceName?: string): Promise<Session> {
    return this.adopt(await this.call({ method: 'POST', path: '/v1/auth/register', body: { username, password, deviceName }, auth: false, schema: SessionResponse }));
  }

  /** Logs in a new device; the session is kept for later calls. */
  async login(username: string, password: string, deviceName?: string): Promise<Session> {
    return this.adopt(await this.call({ method: 'POST', path: '/v1/auth/login', body: { username, password, deviceName }, auth: false, schema: SessionResponse }));
  }

  /**
   * Trades a refresh token (default: the held session's) for a new pair. Concurrent calls
   * share one request, since reusing a refresh token logs the device out.
   */
  refresh(refreshToken?: string): Promise<Session> {
    const token = refreshToken ?? this.current?.refreshToken;
    if (!token) return Promise.reject(new ConfabError('not_authenticated', 'no refresh token: log in first'));
    if (this.refreshing && refreshToken === undefined) return this.refreshing;
    const p = this.call({ method: 'POST', path: '/v1/auth/refresh', body: { refreshToken: token }, auth: false, schema: SessionResponse })
      .then((s) => this.adopt(s))
      .finally(() => { if (this.refreshing === p) this.refreshing = undefined; });
    if (refreshToken === undefined) this.refreshing = p;
    return p;
  }

  /** Logs this device out (its refresh tokens are revoked) and forgets the session. */
  async logout(refreshToken?: string): Promise<void> {
    const token = refreshToken ?? this.current?.refreshToken;
    await this.call({ method: 'POST', path: '/v1/auth/logout', body: token ? { refreshToken: token } : {}, schema: NO_BODY });
    this.current = undefined;
    this.token = undefined;
    this.expiresAt = Infinity;
    this.myId = undefined;
  }

  // ---- users -----------------------------------------------------------------------------

  /** The caller, with privacy settings. */
  async me(): Promise<Me> {
    const user = await this.call({ method: 'GET', path: '/v1/me', schema: MeResponse });
    this.myId = user.id;
    return user;
  }

  /** Changes the caller's settings (e.g. `{ hideLastSeen: true }`); resolves with the caller as now. */
  async updateMe(settings: MeSettings): Promise<Me> {
    const user = await this.call({ method: 'PATCH', path: '/v1/me', body: { hideLastSeen: settings.hideLastSeen }, schema: MeResponse });
    this.myId = user.id;
    return user;
  }

  /**
   * Presence of users by id (at most 1000): online / away / offline and last seen, for those you
   * share a conversation with; the others come back in `denied`.
   */
  async presence(userIds: readonly string[]): Promise<PresenceResult> {
    if (userIds.length === 0) return { users: [], denied: [] };
    return this.call({ method: 'GET', path: `/v1/presence?users=${userIds.map(enc).join(',')}`, schema: PresenceResponse });
  }

  /** Looks a user up by username. */
  user(username: string): Promise<User> {
    return this.call({ method: 'GET', path: `/v1/users/${enc(username)}`, schema: UserSchema });
  }

  // ---- conversations ---------------------------------------------------------------------

  /** My conversations, most recent activity first, with last message and unread counts. */
  conversations(): Promise<ConversationList> {
    return this.call({ method: 'GET', path: '/v1/conversations', schema: ConversationsResponse });
  }

  /** The 1:1 conversation with `username`, created on first call. */
  direct(username: string): Promise<Conversation> {
    return this.call({ method: 'POST', path: '/v1/conversations/direct', body: { username }, schema: ConversationSchema });
  }

  /** Creates a group owned by the caller, with the given members (usernames). */
  createGroup(name: string, members: string[] = []): Promise<Conversation> {
    return this.call({ method: 'POST', path: '/v1/conversations', body: { name, members }, schema: ConversationSchema });
  }

  /** One conversation (members only). */
  conversation(conversationId: string): Promise<Conversation> {
    return this.call({ method: 'GET', path: conv(conversationId), schema: ConversationSchema });
  }

  /** Renames a group (owner/admin). */
  rename(conversationId: string, name: string): Promise<Conversation> {
    return this.call({ method: 'PATCH', path: conv(conversationId), body: { name }, schema: ConversationSchema });
  }

  /** Members of a conversation. */
  async members(conversationId: string): Promise<Member[]> {
    return (await this.call({ method: 'GET', path: `${conv(conversationId)}/members`, schema: MembersResponse })).members;
  }

  /** Adds members (usernames) to a group (owner/admin); returns all members. */
  async addMembers(conversationId: string, usernames: string[]): Promise<Member[]> {
    return (await this.call({ method: 'POST', path: `${conv(conversationId)}/members`, body: { members: usernames }, schema: MembersResponse })).members;
  }

  /** Removes a member (owner/admin), or leaves when `userId` is the caller's. */
  async removeMember(conversationId: string, userId: string): Promise<void> {
    await this.call({ method: 'DELETE', path: `${conv(conversationId)}/members/${enc(userId)}`, schema: NO_BODY });
  }

  /** Leaves a conversation. */
  async leave(conversationId: string): Promise<void> {
    const me = this.myId ?? this.current?.user.id ?? (await this.me()).id;
    await this.removeMember(conversationId, me);
  }

  /** Makes a member admin or plain member (owner only); returns all members. */
  async setRole(conversationId: string, userId: string, role: 'admin' | 'member'): Promise<Member[]> {
    return (await this.call({ method: 'PUT', path: `${conv(conversationId)}/members/${enc(userId)}/role`, body: { role }, schema: MembersResponse })).members;
  }

  // ---- messages --------------------------------------------------------------------------

  /** A page of history: `after` = seq > after; `before` (or neither: the latest) = the page before. Oldest first. */
  history(conversationId: string, options: HistoryOptions = {}): Promise<HistoryPage> {
    const q: string[] = [];
    for (const key of ['after', 'before', 'limit'] as const) {
      const v = options[key];
      if (v !== undefined) q.push(`${key}=${encodeURIComponent(String(v))}`);
    }
    return this.call({ method: 'GET', path: `${conv(conversationId)}/messages${q.length > 0 ? `?${q.join('&')}` : ''}`, schema: MessagesResponse });
  }

  /** Sends a message; answers after the commit. Reuse `clientId` to retry without duplicating. */
  sendMessage(conversationId: string, text: string, clientId: string = randomId()): Promise<SendResult> {
    return this.call({ method: 'POST', path: `${conv(conversationId)}/messages`, body: { clientId, text }, schema: SendResponse });
  }

  /** Edits your own message: appends an `edit` entry. */
  editMessage(conversationId: string, messageId: string, text: string, clientId: string = randomId()): Promise<SendResult> {
    return this.call({ method: 'PATCH', path: `${conv(conversationId)}/messages/${enc(messageId)}`, body: { clientId, text }, schema: SendResponse });
  }

  /** Deletes a message: appends a `delete` entry and leaves a tombstone. */
  deleteMessage(conversationId: string, messageId: string, clientId: string = randomId()): Promise<SendResult> {
    return this.call({ method: 'DELETE', path: `${conv(conversationId)}/messages/${enc(messageId)}`, body: { clientId }, schema: SendResponse });
  }

  /** Moves your read cursor forward to `seq`. */
  markRead(conversationId: string, seq: number): Promise<ReadState> {
    return this.call({ method: 'POST', path: `${conv(conversationId)}/read`, body: { seq }, schema: ReadResponse });
  }

  /** Who has received and read what: the aggregates and every member's delivered/read cursors (members only). */
  receipts(conversationId: string): Promise<ConversationReceipts> {
    return this.call({ method: 'GET', path: `${conv(conversationId)}/receipts`, schema: ReceiptsResponse });
  }

  // ---- plumbing --------------------------------------------------------------------------

  private adopt(session: Session): Session {
    this.current = session;
    this.token = session.accessToken;
    this.myId = session.user.id;
    this.expiresAt = this.now() + session.expiresIn * 1000;
    this.onSession?.(session);
    return session;
  }

  private async call<T>(c: Call<T>): Promise<T> {
    const auth = c.auth ?? true;
    try {
      return await this.once(c, auth ? await this.accessToken() : undefined);
    } catch (err) {
      // The token expired earlier than we thought (clock skew): refresh once and retry.
      if (!(auth && err instanceof ConfabError && err.code === 'token_expired' && this.current && !this.getAccessToken)) throw err;
      return this.once(c, await this.accessToken(true));
    }
  }

  private async once<T>(c: Call<T>, token: string | undefined): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (c.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(c.body);
    }
    let res: FetchResponseLike;
    let text: string;
    try {
      res = await this.fetchImpl(this.baseUrl + c.path, { method: c.method, headers, ...(body === undefined ? {} : { body }) });
      text = await res.text();
    } catch (err) {
      throw new ConfabError('network', `${c.method} ${c.path} failed: ${String(err)}`, { cause: err });
    }
    if (res.status >= 400) throw errorOf(res.status, text);
    if (c.schema === undefined) return undefined as T;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ConfabError('bad_response', `${c.method} ${c.path}: the body is not JSON`, { status: res.status });
    }
    const parsed = c.schema.safeParse(json);
    if (!parsed.success) {
      throw new ConfabError('bad_response', `${c.method} ${c.path}: the body does not match the protocol`, { status: res.status, details: issuesOf(parsed.error) });
    }
    return parsed.data;
  }
}

/** The ConfabError of an HTTP error answer (JSON `{ error }` body, or just a status). */
function errorOf(status: number, text: string): ConfabError {
  let e: { code?: unknown; message?: unknown; retryAfterMs?: unknown; details?: unknown } | undefined;
  try {
    e = (JSON.parse(text) as { error?: typeof e }).error;
  } catch {
    e = undefined;
  }
  if (e && isErrorCode(e.code)) {
    return new ConfabError(e.code, typeof e.message === 'string' ? e.message : e.code, {
      status,
      ...(typeof e.retryAfterMs === 'number' ? { retryAfterMs: e.retryAfterMs } : {}),
      ...(Array.isArray(e.details) ? { details: e.details as { path: string; message: string }[] } : {}),
    });
  }
  const code = status === 429 ? 'rate_limited' : status === 503 ? 'unavailable' : status >= 500 ? 'internal' : 'bad_response';
  return new ConfabError(code, `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`, { status });
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

function conv(conversationId: string): string {
  return `/v1/conversations/${enc(conversationId)}`;
}
