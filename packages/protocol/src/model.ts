// Shapes shared by frames and REST bodies: messages, conversations, users, sessions.
import { z } from 'zod';

/** Ids are UUIDs (v7 when the server makes them). */
export const Id = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a UUID');
export const SeqSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** Client-chosen idempotency key of a send/edit/delete: any 1-64 printable ASCII characters. */
export const ClientId = z.string().min(1).max(64).regex(/^[\x21-\x7e]+$/, 'must be 1-64 printable ASCII characters');
export const Username = z.string().min(3).max(32).regex(/^[a-z0-9_][a-z0-9_.-]*$/, 'lowercase letters, digits, _ . - (3-32), not starting with . or -');
export const RequestId = z.string().min(1).max(64);
/**
 * User-visible text (messages, names): JSON escapes can carry lone UTF-16 surrogates ("\ud800")
 * that no UTF-8 store can keep, and NUL, which PostgreSQL text cannot hold: the stored text
 * would differ from what was acked.
 */
export const UnicodeText = z.string().refine((s) => !/\p{Cs}/u.test(s) && !s.includes('\u0000'), 'must be valid Unicode text (no lone UTF-16 surrogates, no NUL)');

export const MessageKind = z.enum(['message', 'edit', 'delete']);
export type MessageKind = z.infer<typeof MessageKind>;

/**
 * One entry of a conversation's ordered log. `message` entries show their current state
 * (edited text, or a tombstone once deleted); `edit` and `delete` entries record the change
 * at their own seq so every device converges by applying the log in order.
 */
export const Message = z.object({
  conversationId: Id,
  seq: SeqSchema,
  messageId: Id,
  kind: MessageKind,
  sender: Id,
  senderUsername: z.string(),
  clientId: ClientId,
  text: z.string(),
  createdAt: z.number().int(),
  /** For `edit` and `delete`: the message they change. */
  target: z.object({ messageId: Id, seq: SeqSchema }).optional(),
  /** For `message`: when it was last edited. */
  editedAt: z.number().int().optional(),
  /** For `message`: when it was deleted (its text is then empty). */
  deletedAt: z.number().int().optional(),
});
export type Message = z.infer<typeof Message>;

export const Role = z.enum(['owner', 'admin', 'member']);
export type Role = z.infer<typeof Role>;
export const ConversationKind = z.enum(['direct', 'group']);
export type ConversationKind = z.infer<typeof ConversationKind>;

export const UserRef = z.object({ id: Id, username: z.string() });

export const Member = z.object({ userId: Id, username: z.string(), role: Role, joinedAt: z.number().int() });
export type Member = z.infer<typeof Member>;

export const Conversation = z.object({
  id: Id,
  kind: ConversationKind,
  /** Group name; null for direct conversations (show `peer.username`). */
  name: z.string().nullable(),
  /** For direct conversations: the other participant. */
  peer: UserRef.optional(),
  memberCount: z.number().int(),
  /** Your role in it. */
  role: Role,
  createdAt: z.number().int(),
  /** Time of the last message, or of creation; the list is sorted by it, newest first. */
  updatedAt: z.number().int(),
  lastSeq: SeqSchema,
  lastMessage: Message.nullable(),
  /** Your read cursor: you have read everything up to this seq. */
  readSeq: SeqSchema,
  /** Messages after `readSeq` from other senders that are not deleted. */
  unread: z.number().int(),
});
export type Conversation = z.infer<typeof Conversation>;

export const User = z.object({ id: Id, username: z.string(), createdAt: z.number().int() });
export type User = z.infer<typeof User>;

export const Session = z.object({
  user: User,
  deviceId: Id,
  accessToken: z.string(),
  /** Seconds until `accessToken` expires. */
  expiresIn: z.number().int(),
  /** Single use: each refresh returns a new one; reusing an old one logs the device out. */
  refreshToken: z.string(),
});
export type Session = z.infer<typeof Session>;
