// Rows of the PostgreSQL store and their mapping to the port's records. BIGINT columns arrive as
// JS numbers (the pool's INT8 parser, see postgres-store.ts); nested rows built with `to_json`
// arrive as parsed objects with the same column names, so one mapper serves both.
import type { Role, UserId } from '@confab/protocol';
import type { ConversationView, UserRecord } from '../../ports/store.js';
import { toConversation, toMessage, type ConversationRow, type MessageRow } from '../sql-rows.js';

export { toConversation, toMember, toMessage, type ConversationRow, type MemberRow, type MessageRow } from '../sql-rows.js';

/** Columns of a message row, with the sender's username (`m` is messages, `u` users). */
export const MSG_COLUMNS = `m.conversation_id, m.seq, m.id, m.kind, m.sender_id, u.username, m.client_id, m.text,
  m.created_at, m.target_id, m.target_seq, m.edited_at, m.deleted_at`;

export interface UserRow { id: string; username: string; password_hash: string; created_at: number; last_seen_at: number | null; hide_last_seen: boolean }

/** Columns of a member row with the username (`m` is members, `u` users). */
export const MEMBER_COLUMNS = 'm.user_id, u.username, m.role, m.joined_at, m.read_seq, m.delivered_seq';
/** A conversation as one member sees it, computed in one statement (see VIEW_SQL). */
export interface ViewRow extends ConversationRow {
  role: Role; read_seq: number; unread: number; last_message: MessageRow | null; peer_id: string | null; peer_username: string | null;
}

export const MSG_FROM = 'messages m JOIN users u ON u.id = m.sender_id';

/** Unread entries for a member: other members' messages after the read cursor, not deleted. SQL expressions for conversation, user and read seq. */
export const unreadSql = (c: string, u: string, r: string): string =>
  `(SELECT COUNT(*) FROM messages x WHERE x.conversation_id = ${c} AND x.seq > ${r} AND x.kind = 'message' AND x.deleted_at IS NULL AND x.sender_id <> ${u})`;

/**
 * Conversations with the caller's role, read cursor, unread count, last message and (direct only)
 * peer: one statement, so one snapshot and one round trip for a whole list. `$1` is the user.
 */
export const VIEW_SQL = `SELECT c.*, me.role, me.read_seq,
  ${unreadSql('c.id', 'me.user_id', 'me.read_seq')} AS unread,
  (SELECT to_json(l) FROM (SELECT ${MSG_COLUMNS} FROM ${MSG_FROM} WHERE m.conversation_id = c.id AND m.seq = c.last_message_seq) l) AS last_message,
  p.user_id AS peer_id, p.username AS peer_username
FROM members me JOIN conversations c ON c.id = me.conversation_id
LEFT JOIN LATERAL (SELECT pm.user_id, pu.username FROM members pm JOIN users pu ON pu.id = pm.user_id
  WHERE c.kind = 'direct' AND pm.conversation_id = c.id AND pm.user_id <> me.user_id LIMIT 1) p ON true
WHERE me.user_id = $1`;

/**
 * PostgreSQL text cannot hold U+0000 (SQLite can, and the protocol accepts it): it is written as
 * U+FFFD, so one such message cannot fail a whole batch, and looked up as such (never matches).
 */
export const pgText = (s: string): string => s.replaceAll('\u0000', '\uFFFD');

export const toUser = (r: UserRow): UserRecord => ({
  id: r.id as UserId, username: r.username, passwordHash: r.password_hash, createdAt: r.created_at, lastSeenAt: r.last_seen_at, hideLastSeen: r.hide_last_seen,
});



export const toView = (r: ViewRow): ConversationView => ({
  ...toConversation(r), role: r.role, readSeq: r.read_seq, unread: r.unread,
  lastMessage: r.last_message ? toMessage(r.last_message) : null,
  peer: r.peer_id !== null && r.peer_username !== null ? { id: r.peer_id as UserId, username: r.peer_username } : null,
});
