// The cluster store: PostgreSQL through node-postgres' Pool. Several nodes share one database;
// it is the source of truth and the inbox (shared/DESIGN.md, "Shape"). Same port, same contract
// and same semantics as SqliteStore; what differs is concurrency: nodes write at the same time,
// so the seq allocator is serialized per conversation with row locks (append.ts) and every
// multi-statement operation is one transaction. PostgreSQL's default `synchronous_commit = on`
// makes COMMIT durable (WAL fsynced) before a caller is answered.
import { userInfo } from 'node:os';
import pg from 'pg';
import type { ConversationId, DeviceId, Message, MessageId, Role, UserId } from '@confab/protocol';
import { StoreUnavailableError } from '../../errors.js';
import type {
  AppendRequest, AppendResult, MemberSet, ConversationRecord, ConversationView, DeviceRecord, MemberRecord, NewGroup,
  RefreshTokenRecord, RotateResult, Store, UserRecord,
} from '../../ports/store.js';
import { appendBatch } from './append.js';
import { migrate } from './migrations.js';
import {
  MEMBER_COLUMNS, MSG_COLUMNS, MSG_FROM, VIEW_SQL, pgText, toConversation, toMember, toMessage, toUser, toView, unreadSql,
  type ConversationRow, type MemberRow, type MessageRow, type UserRow, type ViewRow,
} from './rows.js';
import { isUnavailable, reasonOf } from './unavailable.js';

export interface PostgresStoreOptions {
  /** Connection string, e.g. postgres://user@host:5432/confab. */
  url: string;
  /** Most connections this store opens (default 10). */
  poolSize?: number;
  /** Schema for the tables: set as search_path on every connection, created if missing. */
  schema?: string;
  /** How long to wait for a connection before answering `unavailable` (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Errors of idle connections (the server restarted, say); they are otherwise harmless. */
  onIdleError?: (err: Error) => void;
  /** Shown in pg_stat_activity (default "confab"). */
  applicationName?: string;
  /** Apply missing migrations before resolving (default true). */
  migrate?: boolean;
}

type Db = pg.Pool | pg.PoolClient;

/** BIGINT (seqs, ms timestamps, COUNT) as JS numbers: every value we store is below 2^53. */
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format) as unknown) as typeof pg.types.getTypeParser,
};

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The URL with a user name when it names none: like libpq (psql), default to the OS user.
 * node-postgres would otherwise fall back to $USER only, which services often run without.
 */
export function withDefaultUser(url: string): string {
  if (process.env.PGUSER ?? process.env.USER) return url;
  try {
    const u = new URL(url);
    if (u.username || !/^postgres(ql)?:$/.test(u.protocol)) return url;
    u.username = userInfo().username;
    return u.toString();
  } catch {
    return url;
  }
}

export class PostgresStore implements Store {
  readonly #pool: pg.Pool;
  /**
   * The write path's own connection: a node commits one batch at a time (core/writer.ts), and
   * its commits must not queue behind reads for a pooled connection.
   */
  readonly #writer: pg.Pool;
  #closed = false;

  private constructor(pool: pg.Pool, writer: pg.Pool) {
    this.#pool = pool;
    this.#writer = writer;
  }

  /** Connects, applies missing migrations (safe when several nodes start at once) and returns the store. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) throw new Error(`invalid schema name "${options.schema}"`);
    const open = (max: number): pg.Pool => {
      const pool = new pg.Pool({
        connectionString: withDefaultUser(options.url),
        max,
        connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
        types,
        application_name: options.applicationName ?? 'confab',
        ...(options.schema !== undefined ? { options: `-c search_path=${options.schema}` } : {}),
      });
      // Without a listener, an idle connection dropped by the server would crash the process.
      pool.on('error', (err) => options.onIdleError?.(err));
      return pool;
    };
    const store = new PostgresStore(open(options.poolSize ?? 10), open(1));
    if (options.migrate === false) return store;
    try {
      await store.#withClient((c) => migrate(c, options.schema));
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
    return store;
  }

  /** Maps connection failures to StoreUnavailableError; everything else is rethrown as is. */
  #fail(err: unknown): never {
    if (this.#closed || isUnavailable(err)) throw new StoreUnavailableError(this.#closed ? 'store closed' : reasonOf(err));
    throw err instanceof Error ? err : new Error(String(err));
  }

  async #run<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    try {
      if (this.#closed) throw new StoreUnavailableError('store closed');
      return await fn(this.#pool);
    } catch (err) {
      return this.#fail(err);
    }
  }

  /**
   * A pooled connection for `fn`. While checked out, a client reports a lost connection as an
   * 'error' event (besides failing its queries); without a listener that would crash the
   * process. A connection that broke on the way is destroyed on release, not reused.
   */
  async #withClient<T>(fn: (c: pg.PoolClient, broken: () => void) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreUnavailableError('store closed');
    let c: pg.PoolClient;
    try {
      c = await this.#pool.connect();
    } catch (err) {
      return this.#fail(err);
    }
    let broken: Error | undefined;
    const onError = (err: Error) => { broken ??= err; };
    c.on('error', onError);
    try {
      return await fn(c, () => { broken ??= new Error('connection left in an unknown state'); });
    } catch (err) {
      if (isUnavailable(err)) broken ??= err as Error;
      return this.#fail(err);
    } finally {
      c.off('error', onError);
      c.release(broken);
    }
  }

  /** One transaction: COMMIT when `fn` resolves, ROLLBACK (nothing half-written) when it throws. */
  #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#withClient(async (c, broken) => {
      await c.query('BEGIN');
      try {
        const out = await fn(c);
        await c.query('COMMIT');
        return out;
      } catch (err) {
        await c.query('ROLLBACK').catch(broken);
        throw err;
      }
    });
  }

  async #row<R extends pg.QueryResultRow>(db: Db, text: string, values: unknown[]): Promise<R | undefined> {
    return (await db.query<R>(text, values)).rows[0];
  }

  // ---- users and devices ------------------------------------------------------------

  createUser(u: UserRecord): Promise<boolean> {
    return this.#run(async (db) => (await db.query('INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING',
      [u.id, pgText(u.username), u.passwordHash, u.createdAt])).rowCount === 1);
  }
  userById(id: UserId): Promise<UserRecord | null> {
    return this.#run(async (db) => { const r = await this.#row<UserRow>(db, 'SELECT * FROM users WHERE id = $1', [id]); return r ? toUser(r) : null; });
  }
  userByUsername(username: string): Promise<UserRecord | null> {
    return this.#run(async (db) => { const r = await this.#row<UserRow>(db, 'SELECT * FROM users WHERE username = $1', [pgText(username)]); return r ? toUser(r) : null; });
  }
  usersByUsernames(usernames: readonly string[]): Promise<UserRecord[]> {
    // In the order asked, like SqliteStore (one row per name found).
    return this.#run(async (db) => (await db.query<UserRow>(
      'SELECT u.* FROM unnest($1::text[]) WITH ORDINALITY AS n(name, i) JOIN users u ON u.username = n.name ORDER BY n.i', [usernames.map(pgText)])).rows.map(toUser));
  }
  createDevice(d: DeviceRecord, t: RefreshTokenRecord): Promise<void> {
    return this.#tx(async (c) => {
      await c.query('INSERT INTO devices (id, user_id, name, created_at) VALUES ($1, $2, $3, $4)', [d.id, d.userId, d.name === null ? null : pgText(d.name), d.createdAt]);
      await c.query('INSERT INTO refresh_tokens (token_hash, device_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)',
        [t.tokenHash, t.deviceId, t.userId, t.createdAt, t.expiresAt]);
    });
  }
  device(id: DeviceId): Promise<DeviceRecord | null> {
    return this.#run(async (db) => {
      const r = await this.#row<{ id: string; user_id: string; name: string | null; created_at: number; revoked_at: number | null }>(db, 'SELECT * FROM devices WHERE id = $1', [id]);
      return r ? { id: r.id as DeviceId, userId: r.user_id as UserId, name: r.name, createdAt: r.created_at, revokedAt: r.revoked_at } : null;
    });
  }
  setLastSeen(userIds: readonly UserId[], at: number): Promise<void> {
    return this.#run(async (db) => { await db.query('UPDATE users SET last_seen_at = $1 WHERE id = ANY($2::uuid[])', [at, userIds]); });
  }
  setHideLastSeen(userId: UserId, hide: boolean): Promise<void> {
    return this.#run(async (db) => { await db.query('UPDATE users SET hide_last_seen = $1 WHERE id = $2', [hide, userId]); });
  }
  revokeDevice(id: DeviceId, at: number): Promise<void> {
    return this.#tx((c) => this.#revoke(c, id, at));
  }
  async #revoke(c: pg.PoolClient, id: DeviceId, at: number): Promise<void> {
    await c.query('UPDATE devices SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [at, id]);
    await c.query('UPDATE refresh_tokens SET used_at = COALESCE(used_at, $1) WHERE device_id = $2', [at, id]);
  }
  rotateRefreshToken(oldHash: string, next: Omit<RefreshTokenRecord, 'deviceId' | 'userId'>, now: number): Promise<RotateResult> {
    return this.#tx(async (c): Promise<RotateResult> => {
      // The row lock makes two concurrent rotations of one token serial: the second sees it used.
      const t = await this.#row<{ device_id: string; user_id: string; expires_at: number; used_at: number | null }>(c,
        'SELECT device_id, user_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE', [oldHash]);
      if (!t) return { status: 'invalid' };
      const deviceId = t.device_id as DeviceId;
      const dev = await this.#row<{ revoked_at: number | null }>(c, 'SELECT revoked_at FROM devices WHERE id = $1', [deviceId]);
      if (!dev || dev.revoked_at !== null) return { status: 'invalid' };
      if (t.used_at !== null) {
        await this.#revoke(c, deviceId, now);
        return { status: 'reused', deviceId };
      }
      if (t.expires_at <= now) return { status: 'invalid' };
      await c.query('UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL', [now, oldHash]);
      await c.query('INSERT INTO refresh_tokens (token_hash, device_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)',
        [next.tokenHash, deviceId, t.user_id, next.createdAt, next.expiresAt]);
      return { status: 'ok', userId: t.user_id as UserId, deviceId };
    });
  }

  // ---- conversations ----------------------------------------------------------------

  createDirect(id: ConversationId, a: UserId, b: UserId, at: number): Promise<ConversationRecord> {
    const key = [a, b].sort().join(':');
    return this.#tx(async (c) => {
      // A concurrent creation of the same pair waits on the unique key, then does nothing.
      const inserted = (await c.query(`INSERT INTO conversations (id, kind, name, direct_key, created_at, updated_at, member_count)
        VALUES ($1, 'direct', NULL, $2, $3, $3, 2) ON CONFLICT DO NOTHING`, [id, key, at])).rowCount === 1;
      if (inserted) {
        await c.query(`INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES ($1, $2, 'member', $4), ($1, $3, 'member', $4)
          ON CONFLICT DO NOTHING`, [id, a, b, at]);
      }
      return toConversation((await this.#row<ConversationRow>(c, 'SELECT * FROM conversations WHERE direct_key = $1', [key]))!);
    });
  }
  createGroup(g: NewGroup): Promise<ConversationRecord> {
    return this.#tx(async (c) => {
      await c.query(`INSERT INTO conversations (id, kind, name, direct_key, created_at, updated_at, member_count)
        VALUES ($1, 'group', $2, NULL, $3, $3, 0) ON CONFLICT DO NOTHING`, [g.id, pgText(g.name), g.createdAt]);
      await c.query(`INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES ($1, $2, 'owner', $3) ON CONFLICT DO NOTHING`, [g.id, g.ownerId, g.createdAt]);
      await c.query(`INSERT INTO members (conversation_id, user_id, role, joined_at)
        SELECT $1::uuid, u, 'member', $3::bigint FROM unnest($2::uuid[]) WITH ORDINALITY AS n(u, i) ORDER BY i ON CONFLICT DO NOTHING`,
      [g.id, g.memberIds.filter((m) => m !== g.ownerId), g.createdAt]);
      return toConversation((await this.#row<ConversationRow>(c, `UPDATE conversations SET member_count = (SELECT COUNT(*) FROM members WHERE conversation_id = $1)
        WHERE id = $1 RETURNING *`, [g.id]))!);
    });
  }
  conversation(id: ConversationId): Promise<ConversationRecord | null> {
    return this.#run(async (db) => { const r = await this.#row<ConversationRow>(db, 'SELECT * FROM conversations WHERE id = $1', [id]); return r ? toConversation(r) : null; });
  }
  rename(id: ConversationId, name: string, _at: number): Promise<void> {
    return this.#run(async (db) => { await db.query('UPDATE conversations SET name = $1 WHERE id = $2', [pgText(name), id]); });
  }
  member(id: ConversationId, userId: UserId): Promise<MemberRecord | null> {
    return this.#run(async (db) => {
      const r = await this.#row<MemberRow>(db, `SELECT ${MEMBER_COLUMNS} FROM members m JOIN users u ON u.id = m.user_id WHERE m.conversation_id = $1 AND m.user_id = $2`, [id, userId]);
      return r ? toMember(r) : null;
    });
  }
  members(id: ConversationId): Promise<MemberRecord[]> {
    return this.#run(async (db) => (await db.query<MemberRow>(`SELECT ${MEMBER_COLUMNS} FROM members m JOIN users u ON u.id = m.user_id
      WHERE m.conversation_id = $1 ORDER BY m.joined_at, u.username`, [id])).rows.map(toMember));
  }
  memberIds(id: ConversationId): Promise<UserId[]> {
    return this.#run(async (db) => (await db.query<{ user_id: string }>('SELECT user_id FROM members WHERE conversation_id = $1', [id])).rows.map((r) => r.user_id as UserId));
  }
  memberSet(id: ConversationId): Promise<MemberSet> {
    return this.#run(async (db) => {
      // One statement, one snapshot: the ids are exactly those of the version read with them.
      const r = await this.#row<{ members_version: number; user_ids: string[] }>(db,
        'SELECT c.members_version, ARRAY(SELECT m.user_id FROM members m WHERE m.conversation_id = c.id) AS user_ids FROM conversations c WHERE c.id = $1', [id]);
      return { version: r ? Number(r.members_version) : 0, userIds: (r?.user_ids ?? []) as UserId[] };
    });
  }
  addMembers(id: ConversationId, userIds: readonly UserId[], at: number, maxMembers: number): Promise<UserId[] | 'full'> {
    return this.#tx(async (c): Promise<UserId[] | 'full'> => {
      // Locking the conversation row makes concurrent additions serial, so the maximum holds.
      const conv = await this.#row<{ member_count: number }>(c, 'SELECT member_count FROM conversations WHERE id = $1 FOR NO KEY UPDATE', [id]);
      const present = new Set((await c.query<{ user_id: string }>('SELECT user_id FROM members WHERE conversation_id = $1 AND user_id = ANY($2::uuid[])',
        [id, [...new Set(userIds)]])).rows.map((r) => r.user_id));
      const fresh = [...new Set(userIds)].filter((u) => !present.has(u));
      if ((conv?.member_count ?? 0) + fresh.length > maxMembers) return 'full';
      await c.query(`INSERT INTO members (conversation_id, user_id, role, joined_at)
        SELECT $1::uuid, u, 'member', $3::bigint FROM unnest($2::uuid[]) WITH ORDINALITY AS n(u, i) ORDER BY i ON CONFLICT DO NOTHING`, [id, fresh, at]);
      await c.query('UPDATE conversations SET member_count = (SELECT COUNT(*) FROM members WHERE conversation_id = $1) WHERE id = $1', [id]);
      return fresh;
    });
  }
  removeMember(id: ConversationId, userId: UserId): Promise<boolean> {
    return this.#tx(async (c) => {
      // The conversation first, as append and addMembers lock it: taking the member row first
      // could deadlock with an append by this member (conversation, then its cursors).
      await c.query('SELECT 1 FROM conversations WHERE id = $1 FOR NO KEY UPDATE', [id]);
      const removed = (await c.query('DELETE FROM members WHERE conversation_id = $1 AND user_id = $2', [id, userId])).rowCount === 1;
      if (removed) await c.query('UPDATE conversations SET member_count = (SELECT COUNT(*) FROM members WHERE conversation_id = $1) WHERE id = $1', [id]);
      return removed;
    });
  }
  setRole(id: ConversationId, userId: UserId, role: Role): Promise<void> {
    return this.#run(async (db) => { await db.query('UPDATE members SET role = $1 WHERE conversation_id = $2 AND user_id = $3', [role, id, userId]); });
  }
  listForUser(userId: UserId): Promise<ConversationView[]> {
    return this.#run(async (db) => (await db.query<ViewRow>(`${VIEW_SQL} ORDER BY c.updated_at DESC, c.id DESC`, [userId])).rows.map(toView));
  }
  lastSeqsForUser(userId: UserId): Promise<Map<ConversationId, number>> {
    return this.#run(async (db) => {
      const r = await db.query<{ id: string; last_seq: number }>('SELECT c.id, c.last_seq FROM members m JOIN conversations c ON c.id = m.conversation_id WHERE m.user_id = $1', [userId]);
      return new Map(r.rows.map((x) => [x.id as ConversationId, Number(x.last_seq)]));
    });
  }
  viewForUser(id: ConversationId, userId: UserId): Promise<ConversationView | null> {
    return this.#run(async (db) => { const r = await this.#row<ViewRow>(db, `${VIEW_SQL} AND me.conversation_id = $2`, [userId, id]); return r ? toView(r) : null; });
  }
  advanceReadCursor(id: ConversationId, userId: UserId, seq: number): Promise<{ readSeq: number; unread: number }> {
    return this.#run(async (db) => {
      const r = (await this.#row<{ read_seq: number; unread: number }>(db, `
        WITH moved AS (UPDATE members SET read_seq = GREATEST(read_seq, $3), delivered_seq = GREATEST(delivered_seq, $3)
                       WHERE conversation_id = $1 AND user_id = $2 AND (read_seq < $3 OR delivered_seq < $3) RETURNING read_seq),
             cur AS (SELECT COALESCE((SELECT read_seq FROM moved),
                                     (SELECT read_seq FROM members WHERE conversation_id = $1 AND user_id = $2), 0) AS read_seq)
        SELECT cur.read_seq, ${unreadSql('$1', '$2', 'cur.read_seq')} AS unread FROM cur`, [id, userId, seq]))!;
      return { readSeq: r.read_seq, unread: r.unread };
    });
  }
  advanceDeliveredCursor(id: ConversationId, userId: UserId, seq: number): Promise<boolean> {
    return this.#run(async (db) => (await db.query('UPDATE members SET delivered_seq = $3 WHERE conversation_id = $1 AND user_id = $2 AND delivered_seq < $3',
      [id, userId, seq])).rowCount === 1);
  }
  receiptAggregate(id: ConversationId): Promise<{ delivered: number; read: number; membersVersion: number }> {
    return this.#run(async (db) => {
      const r = await this.#row<{ delivered: number | null; read: number | null; members_version: number | null }>(db,
        `SELECT MIN(delivered_seq) AS delivered, MIN(read_seq) AS read,
           (SELECT members_version FROM conversations WHERE id = $1) AS members_version FROM members WHERE conversation_id = $1`, [id]);
      return { delivered: r?.delivered ?? 0, read: r?.read ?? 0, membersVersion: Number(r?.members_version ?? 0) };
    });
  }
  unreadCounts(userId: UserId, upTo: ReadonlyMap<ConversationId, number>): Promise<Map<ConversationId, { readSeq: number; unread: number }>> {
    return this.#run(async (db) => {
      const rows = (await db.query<{ conversation_id: string; read_seq: number; unread: number }>(
        `SELECT me.conversation_id, me.read_seq,
           (SELECT COUNT(*) FROM messages x WHERE x.conversation_id = me.conversation_id AND x.seq > me.read_seq AND x.seq <= q.up_to
              AND x.kind = 'message' AND x.deleted_at IS NULL AND x.sender_id <> me.user_id)::int AS unread
         FROM unnest($2::uuid[], $3::bigint[]) AS q(id, up_to) JOIN members me ON me.conversation_id = q.id AND me.user_id = $1`,
        [userId, [...upTo.keys()], [...upTo.values()]])).rows;
      const found = new Map(rows.map((r) => [r.conversation_id, r]));
      const out = new Map<ConversationId, { readSeq: number; unread: number }>();
      for (const id of upTo.keys()) {
        const r = found.get(id);
        if (r) out.set(id, { readSeq: Number(r.read_seq), unread: Number(r.unread) });
      }
      return out;
    });
  }
  sharedWith(userId: UserId, candidates: readonly UserId[]): Promise<UserId[]> {
    return this.#run(async (db) => {
      const shared = new Set((await db.query<{ user_id: string }>(`SELECT DISTINCT b.user_id FROM members a JOIN members b ON a.conversation_id = b.conversation_id
        WHERE a.user_id = $1 AND b.user_id = ANY($2::uuid[])`, [userId, candidates])).rows.map((r) => r.user_id));
      return candidates.filter((c) => c === userId || shared.has(c));
    });
  }

  // ---- messages ---------------------------------------------------------------------

  /**
   * One statement in autocommit: `confab_append_v2` runs and commits in one round trip, so the rows
   * it locks are held for the function and the commit's WAL flush only, not for two more round
   * trips through a busy event loop. node-postgres settles a query at ReadyForQuery, which the
   * server sends after the commit is durable.
   */
  append(batch: readonly AppendRequest[]): Promise<AppendResult[]> {
    if (batch.length === 0) return Promise.resolve([]);
    return this.#run(() => appendBatch(this.#writer, batch));
  }
  readAfter(id: ConversationId, after: number, limit: number): Promise<Message[]> {
    return this.#run(async (db) => (await db.query<MessageRow>(`SELECT ${MSG_COLUMNS} FROM ${MSG_FROM} WHERE m.conversation_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3`,
      [id, after, limit])).rows.map(toMessage));
  }
  readBefore(id: ConversationId, before: number, limit: number): Promise<Message[]> {
    return this.#run(async (db) => (await db.query<MessageRow>(`SELECT ${MSG_COLUMNS} FROM ${MSG_FROM} WHERE m.conversation_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3`,
      [id, before, limit])).rows.map(toMessage).reverse());
  }
  message(id: ConversationId, messageId: MessageId): Promise<Message | null> {
    return this.#run(async (db) => { const r = await this.#row<MessageRow>(db, `SELECT ${MSG_COLUMNS} FROM ${MSG_FROM} WHERE m.conversation_id = $1 AND m.id = $2`, [id, messageId]); return r ? toMessage(r) : null; });
  }

  ping(): Promise<void> {
    return this.#run(async (db) => { await db.query('SELECT 1'); });
  }
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.#pool.end(), this.#writer.end()]);
  }
}
