// The embedded store: SQLite through better-sqlite3, WAL journal, synchronous=FULL.
// better-sqlite3 is synchronous: a whole `append` batch is one transaction and one fsync
// (group commit), and no other statement can interleave with it. The WAL is checkpointed into
// the database file by a worker thread (checkpointer.ts), not inside the node's commits.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ConversationId, DeviceId, Message, MessageId, Role, UserId } from '@confab/protocol';
import { StoreUnavailableError } from '../../errors.js';
import type {
  AppendRequest, AppendResult, MemberSet, ConversationRecord, ConversationView, DeviceRecord, MemberRecord, NewGroup,
  RefreshTokenRecord, RotateResult, Store, UserRecord,
} from '../../ports/store.js';
import { passiveCheckpoint, type CheckpointReport } from './checkpoint-pass.js';
import { Checkpointer } from './checkpointer.js';
import { MIGRATIONS } from './migrations.js';
import { toConversation, toMember, toMessage, type ConversationRow, type MemberRow, type MessageRow } from '../sql-rows.js';

interface UserRow { id: string; username: string; password_hash: string; created_at: number; last_seen_at: number | null; hide_last_seen: number }

const toUser = (r: UserRow): UserRecord => ({
  id: r.id as UserId, username: r.username, passwordHash: r.password_hash, createdAt: r.created_at, lastSeenAt: r.last_seen_at, hideLastSeen: r.hide_last_seen === 1,
});

/**
 * A message row with its conversation's and sender's ids and the sender's username: the log names
 * both by their small integer key, `num` (migration 4).
 */
const MSG_FROM = `SELECT c.id AS conversation_id, m.seq, m.id, m.kind, u.id AS sender_id, u.username, m.client_id, m.text,
  m.created_at, m.target_id, m.target_seq, m.edited_at, m.deleted_at
  FROM messages m JOIN conversations c ON c.num = m.conv JOIN users u ON u.num = m.sender`;
const CONV_NUM = '(SELECT num FROM conversations WHERE id = ?)';
const USER_NUM = '(SELECT num FROM users WHERE id = ?)';

const UNAVAILABLE = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_CANTOPEN', 'SQLITE_READONLY']);

export interface SqliteStoreOptions {
  /** Path of the database file, or ':memory:'. */
  path: string;
  /**
   * Where the WAL is copied into the database file: 'background' (a worker thread, the default for
   * a file) or 'inline' (SQLite's default: inside the commit that takes the WAL past 1,000 pages).
   */
  checkpoints?: 'background' | 'inline';
  /** Told about each background checkpoint pass that copied pages. */
  onCheckpoint?: (r: CheckpointReport) => void;
  /** A checkpoint pass failed; `inline`: it was the thread's, which is gone, and commits checkpoint again. */
  onCheckpointError?: (err: Error, inline: boolean) => void;
}

/** SQLite's own threshold for inline checkpoints, in pages. */
const INLINE_CHECKPOINT_PAGES = 1000;
/** With background checkpoints, the node's thread runs a short pass of its own once the WAL holds this many pages, so that it starts over. */
const RESTART_PAGES = 4000;
/** The node's connection checkpoints by itself past this many pages (about 40 MiB): only if the worker falls behind. */
const FALLBACK_CHECKPOINT_PAGES = 10_000;
/** The checkpoint thread's pause between passes. */
const CHECKPOINT_INTERVAL_MS = 100;

export class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly #s;
  readonly #checkpointer: Checkpointer | undefined;

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.#db = new Database(options.path);
    this.#db.pragma('journal_mode = WAL');
    // FULL: the WAL is fsynced at every commit, so an acked message survives power loss.
    this.#db.pragma('synchronous = FULL');
    this.#db.pragma('foreign_keys = ON');
    this.#db.pragma('busy_timeout = 5000');
    this.migrate();
    const db = this.#db;
    this.#s = {
      insertUser: db.prepare(`INSERT INTO users (id, username, password_hash, created_at, num) VALUES (?, ?, ?, ?, (SELECT IFNULL(MAX(num), 0) + 1 FROM users))
         ON CONFLICT(username) DO NOTHING`),
      userById: db.prepare<[string], UserRow>('SELECT * FROM users WHERE id = ?'),
      userByName: db.prepare<[string], UserRow>('SELECT * FROM users WHERE username = ?'),
      insertDevice: db.prepare('INSERT INTO devices (id, user_id, name, created_at) VALUES (?, ?, ?, ?)'),
      device: db.prepare<[string], { id: string; user_id: string; name: string | null; created_at: number; revoked_at: number | null }>('SELECT * FROM devices WHERE id = ?'),
      revokeDevice: db.prepare('UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      revokeTokens: db.prepare('UPDATE refresh_tokens SET used_at = COALESCE(used_at, ?) WHERE device_id = ?'),
      insertToken: db.prepare('INSERT INTO refresh_tokens (token_hash, device_id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)'),
      token: db.prepare<[string], { token_hash: string; device_id: string; user_id: string; expires_at: number; used_at: number | null }>('SELECT * FROM refresh_tokens WHERE token_hash = ?'),
      useToken: db.prepare('UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL'),
      insertConversation: db.prepare(`INSERT INTO conversations (id, kind, name, direct_key, created_at, updated_at, member_count, num)
         VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT IFNULL(MAX(num), 0) + 1 FROM conversations)) ON CONFLICT DO NOTHING`),
      conversation: db.prepare<[string], ConversationRow>('SELECT * FROM conversations WHERE id = ?'),
      conversationByKey: db.prepare<[string], ConversationRow>('SELECT * FROM conversations WHERE direct_key = ?'),
      rename: db.prepare('UPDATE conversations SET name = ? WHERE id = ?'),
      insertMember: db.prepare('INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING'),
      member: db.prepare<[string, string], MemberRow>(
        'SELECT m.user_id, u.username, m.role, m.joined_at, m.read_seq, m.delivered_seq FROM members m JOIN users u ON u.id = m.user_id WHERE m.conversation_id = ? AND m.user_id = ?'),
      members: db.prepare<[string], MemberRow>(
        'SELECT m.user_id, u.username, m.role, m.joined_at, m.read_seq, m.delivered_seq FROM members m JOIN users u ON u.id = m.user_id WHERE m.conversation_id = ? ORDER BY m.joined_at, u.username'),
      memberIds: db.prepare<[string], { user_id: string }>('SELECT user_id FROM members WHERE conversation_id = ?'),
      membersVersion: db.prepare<[string], { members_version: number }>('SELECT members_version FROM conversations WHERE id = ?'),
      isMember: db.prepare<[string, string], { one: number }>('SELECT 1 AS one FROM members WHERE conversation_id = ? AND user_id = ?'),
      /** The sender's `num` and username if a member. */
      sender: db.prepare<[string, string], { num: number; username: string }>(
        'SELECT u.num, u.username FROM members m JOIN users u ON u.id = m.user_id WHERE m.conversation_id = ? AND m.user_id = ?'),
      deleteMember: db.prepare('DELETE FROM members WHERE conversation_id = ? AND user_id = ?'),
      setRole: db.prepare('UPDATE members SET role = ? WHERE conversation_id = ? AND user_id = ?'),
      setMemberCount: db.prepare<[{ id: string }]>('UPDATE conversations SET member_count = (SELECT COUNT(*) FROM members WHERE conversation_id = @id) WHERE id = @id'),
      listForUser: db.prepare<[string], ConversationRow & { role: Role; read_seq: number }>(
        `SELECT c.*, m.role, m.read_seq FROM members m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.user_id = ? ORDER BY c.updated_at DESC, c.id DESC`),
      lastSeqs: db.prepare<[string], { id: string; last_seq: number }>('SELECT c.id, c.last_seq FROM members m JOIN conversations c ON c.id = m.conversation_id WHERE m.user_id = ?'),
      viewForUser: db.prepare<[string, string], ConversationRow & { role: Role; read_seq: number }>(
        'SELECT c.*, m.role, m.read_seq FROM members m JOIN conversations c ON c.id = m.conversation_id WHERE m.conversation_id = ? AND m.user_id = ?'),
      unread: db.prepare<[string, number, string], { n: number }>(
        `SELECT COUNT(*) AS n FROM messages WHERE conv = ${CONV_NUM} AND seq > ? AND kind = 'message' AND deleted_at IS NULL AND sender IS NOT ${USER_NUM}`),
      unreadUpTo: db.prepare<[string, number, number, string], { n: number }>(
        `SELECT COUNT(*) AS n FROM messages WHERE conv = ${CONV_NUM} AND seq > ? AND seq <= ? AND kind = 'message' AND deleted_at IS NULL AND sender IS NOT ${USER_NUM}`),
      peer: db.prepare<[string, string], { user_id: string; username: string }>(
        'SELECT m.user_id, u.username FROM members m JOIN users u ON u.id = m.user_id WHERE m.conversation_id = ? AND m.user_id != ? LIMIT 1'),
      advanceRead: db.prepare<[{ seq: number; id: string; user: string }]>(
        // Only a cursor that moves is written: a repeated read receipt costs no write and no fsync.
        `UPDATE members SET read_seq = MAX(read_seq, @seq), delivered_seq = MAX(delivered_seq, @seq)
         WHERE conversation_id = @id AND user_id = @user AND (read_seq < @seq OR delivered_seq < @seq)`),
      advanceDelivered: db.prepare('UPDATE members SET delivered_seq = ? WHERE conversation_id = ? AND user_id = ? AND delivered_seq < ?'),
      aggregate: db.prepare<[string], { delivered: number | null; read: number | null }>('SELECT MIN(delivered_seq) AS delivered, MIN(read_seq) AS read FROM members WHERE conversation_id = ?'),
      sharedWith: db.prepare<[string, string], { one: number }>(
        'SELECT 1 AS one FROM members a JOIN members b ON a.conversation_id = b.conversation_id WHERE a.user_id = ? AND b.user_id = ? LIMIT 1'),
      setLastSeen: db.prepare('UPDATE users SET last_seen_at = ? WHERE id = ?'),
      setHideLastSeen: db.prepare('UPDATE users SET hide_last_seen = ? WHERE id = ?'),
      bySeq: db.prepare<[string, number], MessageRow>(`${MSG_FROM} WHERE c.id = ? AND m.seq = ?`),
      byId: db.prepare<[string, string], MessageRow>(`${MSG_FROM} WHERE c.id = ? AND m.id = ?`),
      byClient: db.prepare<[string, string, string], MessageRow>(`${MSG_FROM} WHERE c.id = ? AND u.id = ? AND m.client_id = ?`),
      after: db.prepare<[string, number, number], MessageRow>(`${MSG_FROM} WHERE c.id = ? AND m.seq > ? ORDER BY m.seq LIMIT ?`),
      before: db.prepare<[string, number, number], MessageRow>(`${MSG_FROM} WHERE c.id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?`),
      nextSeq: db.prepare<[{ isMessage: number; at: number; id: string }], { last_seq: number; members_version: number; num: number }>(
        `UPDATE conversations SET last_seq = last_seq + 1,
           last_message_seq = CASE WHEN @isMessage THEN last_seq + 1 ELSE last_message_seq END,
           updated_at = CASE WHEN @isMessage THEN @at ELSE updated_at END
         WHERE id = @id RETURNING last_seq, members_version, num`),
      insertMessage: db.prepare(
        `INSERT INTO messages (conv, seq, id, kind, sender, client_id, text, created_at, target_id, target_seq)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      applyEdit: db.prepare('UPDATE messages SET text = ?, edited_at = ? WHERE conv = ? AND seq = ?'),
      applyDelete: db.prepare(`UPDATE messages SET text = '', deleted_at = ? WHERE conv = ? AND seq = ?`),
      // A deleted message's earlier edits must not keep its text either.
      blankEdits: db.prepare(`UPDATE messages SET text = '' WHERE conv = ? AND target_id = ? AND kind = 'edit'`),
    };
    // Last, so that nothing after it can throw and leave the thread running.
    if (options.path !== ':memory:' && (options.checkpoints ?? 'background') === 'background') {
      this.#db.pragma(`wal_autocheckpoint = ${FALLBACK_CHECKPOINT_PAGES}`);
      this.#checkpointer = new Checkpointer(options.path, {
        intervalMs: CHECKPOINT_INTERVAL_MS,
        onReport: (r) => {
          options.onCheckpoint?.(r);
          if (r.walFrames >= RESTART_PAGES) this.#finishCheckpoint(options);
        },
        onFailure: (err) => {
          try {
            if (this.#db.open) this.#db.pragma(`wal_autocheckpoint = ${INLINE_CHECKPOINT_PAGES}`);
          } catch { /* the database itself fails: the next commit says so */ }
          options.onCheckpointError?.(err, true);
        },
      });
    }
  }

  /**
   * The short pass on the node's thread, right after a worker's: it copies what was committed
   * during that pass, so that the next commit finds the WAL all copied and starts it over (a writer
   * that finds it so is the only one that can, without blocking writers).
   */
  #finishCheckpoint(options: SqliteStoreOptions): void {
    if (!this.#db.open || this.#db.inTransaction) return;
    try {
      const r = passiveCheckpoint(this.#db, 'node');
      // busy: the worker is in a pass again; its next report brings us back here.
      if (typeof r !== 'string') options.onCheckpoint?.(r);
    } catch (err) {
      options.onCheckpointError?.(err instanceof Error ? err : new Error(String(err)), false);
    }
  }

  private migrate(): void {
    this.#db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const applied = new Set(this.#db.prepare<[], { version: number }>('SELECT version FROM schema_migrations').all().map((r) => r.version));
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.#db.transaction(() => {
        this.#db.exec(m.sql);
        this.#db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      })();
    }
  }

  /** Runs `fn` and maps engine failures that mean "cannot reach the data" to StoreUnavailableError. */
  #run<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (UNAVAILABLE.has(code) || [...UNAVAILABLE].some((c) => code.startsWith(c + '_')) || !this.#db.open) {
        return Promise.reject(new StoreUnavailableError(code || 'database closed'));
      }
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  // ---- users and devices ------------------------------------------------------------

  createUser(u: UserRecord): Promise<boolean> {
    return this.#run(() => this.#s.insertUser.run(u.id, u.username, u.passwordHash, u.createdAt).changes === 1);
  }
  userById(id: UserId): Promise<UserRecord | null> {
    return this.#run(() => { const r = this.#s.userById.get(id); return r ? toUser(r) : null; });
  }
  userByUsername(username: string): Promise<UserRecord | null> {
    return this.#run(() => { const r = this.#s.userByName.get(username); return r ? toUser(r) : null; });
  }
  usersByUsernames(usernames: readonly string[]): Promise<UserRecord[]> {
    return this.#run(() => usernames.flatMap((n) => { const r = this.#s.userByName.get(n); return r ? [toUser(r)] : []; }));
  }
  createDevice(d: DeviceRecord, t: RefreshTokenRecord): Promise<void> {
    return this.#run(() => this.#db.transaction(() => {
      this.#s.insertDevice.run(d.id, d.userId, d.name, d.createdAt);
      this.#s.insertToken.run(t.tokenHash, t.deviceId, t.userId, t.createdAt, t.expiresAt);
    })());
  }
  device(id: DeviceId): Promise<DeviceRecord | null> {
    return this.#run(() => {
      const r = this.#s.device.get(id);
      return r ? { id: r.id as DeviceId, userId: r.user_id as UserId, name: r.name, createdAt: r.created_at, revokedAt: r.revoked_at } : null;
    });
  }
  revokeDevice(id: DeviceId, at: number): Promise<void> {
    return this.#run(() => this.#db.transaction(() => {
      this.#s.revokeDevice.run(at, id);
      this.#s.revokeTokens.run(at, id);
    })());
  }
  rotateRefreshToken(oldHash: string, next: Omit<RefreshTokenRecord, 'deviceId' | 'userId'>, now: number): Promise<RotateResult> {
    return this.#run(() => this.#db.transaction((): RotateResult => {
      const t = this.#s.token.get(oldHash);
      if (!t) return { status: 'invalid' };
      const deviceId = t.device_id as DeviceId;
      const dev = this.#s.device.get(deviceId);
      if (!dev || dev.revoked_at !== null) return { status: 'invalid' };
      if (t.used_at !== null) {
        this.#s.revokeDevice.run(now, deviceId);
        this.#s.revokeTokens.run(now, deviceId);
        return { status: 'reused', deviceId };
      }
      if (t.expires_at <= now) return { status: 'invalid' };
      this.#s.useToken.run(now, oldHash);
      this.#s.insertToken.run(next.tokenHash, deviceId, t.user_id, next.createdAt, next.expiresAt);
      return { status: 'ok', userId: t.user_id as UserId, deviceId };
    })());
  }

  // ---- conversations ----------------------------------------------------------------

  createDirect(id: ConversationId, a: UserId, b: UserId, at: number): Promise<ConversationRecord> {
    const key = [a, b].sort().join(':');
    return this.#run(() => this.#db.transaction(() => {
      const inserted = this.#s.insertConversation.run(id, 'direct', null, key, at, at, 2).changes === 1;
      if (inserted) {
        this.#s.insertMember.run(id, a, 'member', at);
        this.#s.insertMember.run(id, b, 'member', at);
      }
      return toConversation(this.#s.conversationByKey.get(key)!);
    })());
  }
  createGroup(g: NewGroup): Promise<ConversationRecord> {
    return this.#run(() => this.#db.transaction(() => {
      this.#s.insertConversation.run(g.id, 'group', g.name, null, g.createdAt, g.createdAt, 0);
      this.#s.insertMember.run(g.id, g.ownerId, 'owner', g.createdAt);
      for (const m of g.memberIds) if (m !== g.ownerId) this.#s.insertMember.run(g.id, m, 'member', g.createdAt);
      this.#s.setMemberCount.run({ id: g.id });
      return toConversation(this.#s.conversation.get(g.id)!);
    })());
  }
  conversation(id: ConversationId): Promise<ConversationRecord | null> {
    return this.#run(() => { const r = this.#s.conversation.get(id); return r ? toConversation(r) : null; });
  }
  rename(id: ConversationId, name: string, _at: number): Promise<void> {
    return this.#run(() => { this.#s.rename.run(name, id); });
  }
  member(id: ConversationId, userId: UserId): Promise<MemberRecord | null> {
    return this.#run(() => { const r = this.#s.member.get(id, userId); return r ? toMember(r) : null; });
  }
  members(id: ConversationId): Promise<MemberRecord[]> {
    return this.#run(() => this.#s.members.all(id).map(toMember));
  }
  memberIds(id: ConversationId): Promise<UserId[]> {
    return this.#run(() => this.#s.memberIds.all(id).map((r) => r.user_id as UserId));
  }
  memberSet(id: ConversationId): Promise<MemberSet> {
    return this.#run(() => this.#db.transaction(() => ({
      version: this.#s.membersVersion.get(id)?.members_version ?? 0,
      userIds: this.#s.memberIds.all(id).map((r) => r.user_id as UserId),
    }))());
  }
  addMembers(id: ConversationId, userIds: readonly UserId[], at: number, maxMembers: number): Promise<UserId[] | 'full'> {
    return this.#run(() => this.#db.transaction((): UserId[] | 'full' => {
      const fresh = [...new Set(userIds)].filter((u) => !this.#s.isMember.get(id, u));
      const count = this.#s.conversation.get(id)?.member_count ?? 0;
      if (count + fresh.length > maxMembers) return 'full';
      for (const u of fresh) this.#s.insertMember.run(id, u, 'member', at);
      this.#s.setMemberCount.run({ id });
      return fresh;
    })());
  }
  removeMember(id: ConversationId, userId: UserId): Promise<boolean> {
    return this.#run(() => this.#db.transaction(() => {
      const removed = this.#s.deleteMember.run(id, userId).changes === 1;
      if (removed) this.#s.setMemberCount.run({ id });
      return removed;
    })());
  }
  setRole(id: ConversationId, userId: UserId, role: Role): Promise<void> {
    return this.#run(() => { this.#s.setRole.run(role, id, userId); });
  }
  #view(r: ConversationRow & { role: Role; read_seq: number }, userId: UserId): ConversationView {
    const last = r.last_message_seq > 0 ? this.#s.bySeq.get(r.id, r.last_message_seq) : undefined;
    const peer = r.kind === 'direct' ? this.#s.peer.get(r.id, userId) : undefined;
    return {
      ...toConversation(r), role: r.role, readSeq: r.read_seq,
      unread: this.#s.unread.get(r.id, r.read_seq, userId)!.n,
      lastMessage: last ? toMessage(last) : null,
      peer: peer ? { id: peer.user_id as UserId, username: peer.username } : null,
    };
  }
  listForUser(userId: UserId): Promise<ConversationView[]> {
    return this.#run(() => this.#db.transaction(() => this.#s.listForUser.all(userId).map((r) => this.#view(r, userId)))());
  }
  lastSeqsForUser(userId: UserId): Promise<Map<ConversationId, number>> {
    return this.#run(() => new Map(this.#s.lastSeqs.all(userId).map((r) => [r.id as ConversationId, r.last_seq])));
  }
  viewForUser(id: ConversationId, userId: UserId): Promise<ConversationView | null> {
    return this.#run(() => this.#db.transaction(() => { const r = this.#s.viewForUser.get(id, userId); return r ? this.#view(r, userId) : null; })());
  }
  advanceReadCursor(id: ConversationId, userId: UserId, seq: number): Promise<{ readSeq: number; unread: number }> {
    return this.#run(() => this.#db.transaction(() => {
      this.#s.advanceRead.run({ seq, id, user: userId });
      const m = this.#s.member.get(id, userId);
      const readSeq = m?.read_seq ?? 0;
      return { readSeq, unread: this.#s.unread.get(id, readSeq, userId)!.n };
    })());
  }

  advanceDeliveredCursor(id: ConversationId, userId: UserId, seq: number): Promise<boolean> {
    return this.#run(() => this.#s.advanceDelivered.run(seq, id, userId, seq).changes === 1);
  }
  receiptAggregate(id: ConversationId): Promise<{ delivered: number; read: number; membersVersion: number }> {
    return this.#run(() => this.#db.transaction(() => {
      const r = this.#s.aggregate.get(id);
      return { delivered: r?.delivered ?? 0, read: r?.read ?? 0, membersVersion: this.#s.membersVersion.get(id)?.members_version ?? 0 };
    })());
  }
  unreadCounts(userId: UserId, upTo: ReadonlyMap<ConversationId, number>): Promise<Map<ConversationId, { readSeq: number; unread: number }>> {
    return this.#run(() => this.#db.transaction(() => {
      const out = new Map<ConversationId, { readSeq: number; unread: number }>();
      for (const [id, last] of upTo) {
        const m = this.#s.member.get(id, userId);
        if (m) out.set(id, { readSeq: m.read_seq, unread: this.#s.unreadUpTo.get(id, m.read_seq, last, userId)!.n });
      }
      return out;
    })());
  }
  sharedWith(userId: UserId, candidates: readonly UserId[]): Promise<UserId[]> {
    return this.#run(() => candidates.filter((c) => c === userId || this.#s.sharedWith.get(userId, c) !== undefined));
  }
  setLastSeen(userIds: readonly UserId[], at: number): Promise<void> {
    return this.#run(() => this.#db.transaction(() => { for (const u of userIds) this.#s.setLastSeen.run(at, u); })());
  }
  setHideLastSeen(userId: UserId, hide: boolean): Promise<void> {
    return this.#run(() => { this.#s.setHideLastSeen.run(hide ? 1 : 0, userId); });
  }

  // ---- messages ---------------------------------------------------------------------

  append(batch: readonly AppendRequest[]): Promise<AppendResult[]> {
    return this.#run(() => this.#db.transaction(() => batch.map((req) => this.#appendOne(req)))());
  }

  #appendOne(req: AppendRequest): AppendResult {
    const s = this.#s;
    // Membership first: a removed member's resend of an old client id is refused like any other
    // send from a non-member, and learns nothing of the message's current state.
    const sender = s.sender.get(req.conversationId, req.senderId);
    if (!sender) return { ok: false, reason: 'not_member' };
    const existing = s.byClient.get(req.conversationId, req.senderId, req.clientId);
    if (existing) {
      if (existing.kind !== req.kind || (existing.target_id ?? undefined) !== req.targetId) return { ok: false, reason: 'client_id_reused' };
      return { ok: true, message: toMessage(existing), duplicate: true, membersVersion: s.membersVersion.get(req.conversationId)?.members_version ?? 0 };
    }
    let target: MessageRow | undefined;
    if (req.kind !== 'message') {
      target = req.targetId === undefined ? undefined : s.byId.get(req.conversationId, req.targetId);
      if (!target || target.kind !== 'message') return { ok: false, reason: 'message_not_found' };
      if (target.deleted_at !== null) return { ok: false, reason: 'message_deleted' };
    }
    const { last_seq: seq, members_version: membersVersion, num: conv } = s.nextSeq.get({ isMessage: req.kind === 'message' ? 1 : 0, at: req.createdAt, id: req.conversationId })!;
    s.insertMessage.run(conv, seq, req.messageId, req.kind, sender.num, req.clientId, req.text, req.createdAt, target?.id ?? null, target?.seq ?? null);
    if (target && req.kind === 'edit') s.applyEdit.run(req.text, req.createdAt, conv, target.seq);
    if (target && req.kind === 'delete') {
      s.applyDelete.run(req.createdAt, conv, target.seq);
      s.blankEdits.run(conv, target.id);
    }
    if (req.kind === 'message') s.advanceRead.run({ seq, id: req.conversationId, user: req.senderId });
    // The entry as inserted (the contract checks that a read returns the same).
    const message: Message = {
      conversationId: req.conversationId, seq, messageId: req.messageId, kind: req.kind, sender: req.senderId, senderUsername: sender.username,
      clientId: req.clientId, text: req.text, createdAt: req.createdAt,
    };
    if (target) message.target = { messageId: target.id, seq: target.seq };
    return { ok: true, message, duplicate: false, membersVersion };
  }

  readAfter(id: ConversationId, after: number, limit: number): Promise<Message[]> {
    return this.#run(() => this.#s.after.all(id, after, limit).map(toMessage));
  }
  readBefore(id: ConversationId, before: number, limit: number): Promise<Message[]> {
    return this.#run(() => this.#s.before.all(id, before, limit).map(toMessage).reverse());
  }
  message(id: ConversationId, messageId: MessageId): Promise<Message | null> {
    return this.#run(() => { const r = this.#s.byId.get(id, messageId); return r ? toMessage(r) : null; });
  }

  ping(): Promise<void> {
    return this.#run(() => { this.#db.prepare('SELECT 1').get(); });
  }
  async close(): Promise<void> {
    // The checkpoint thread's connection closes first, so that the node's, the last one, copies
    // what is left and removes the WAL.
    await this.#checkpointer?.stop();
    if (this.#db.open) this.#db.close();
  }
}
