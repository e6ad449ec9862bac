// Rows shared by the SQL stores (the queries of SQLite and PostgreSQL return the same column names) and their
// mapping to the port's records.
import type { ConversationId, Message, Role, UserId } from '@confab/protocol';
import type { ConversationRecord, MemberRecord } from '../ports/store.js';

export interface MessageRow {
  conversation_id: string; seq: number; id: string; kind: 'message' | 'edit' | 'delete'; sender_id: string;
  username: string; client_id: string; text: string; created_at: number; target_id: string | null;
  target_seq: number | null; edited_at: number | null; deleted_at: number | null;
}
export interface ConversationRow {
  id: string; kind: 'direct' | 'group'; name: string | null; created_at: number; updated_at: number;
  last_seq: number; last_message_seq: number; member_count: number;
}
export interface MemberRow { user_id: string; username: string; role: Role; joined_at: number; read_seq: number; delivered_seq: number }


export function toMessage(r: MessageRow): Message {
  const m: Message = {
    conversationId: r.conversation_id, seq: r.seq, messageId: r.id, kind: r.kind, sender: r.sender_id,
    senderUsername: r.username, clientId: r.client_id, text: r.text, createdAt: r.created_at,
  };
  if (r.target_id !== null && r.target_seq !== null) m.target = { messageId: r.target_id, seq: r.target_seq };
  if (r.edited_at !== null) m.editedAt = r.edited_at;
  if (r.deleted_at !== null) m.deletedAt = r.deleted_at;
  return m;
}

export const toConversation = (r: ConversationRow): ConversationRecord => ({
  id: r.id as ConversationId, kind: r.kind, name: r.name, createdAt: r.created_at, updatedAt: r.updated_at,
  lastSeq: r.last_seq, memberCount: r.member_count,
});

export const toMember = (r: MemberRow): MemberRecord => ({
  userId: r.user_id as UserId, username: r.username, role: r.role, joinedAt: r.joined_at, readSeq: r.read_seq, deliveredSeq: r.delivered_seq,
});
