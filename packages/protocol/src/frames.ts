// Every WebSocket frame of protocol v1, declared once. Types, runtime validation and
// docs/protocol.md all come from these schemas.
import { z } from 'zod';
import { ERROR_CODE_NAMES } from './codes.js';
import { ClientId, Conversation, Id, Message, RequestId, SeqSchema, UnicodeText } from './model.js';
import type { Rate } from './rates.js';

const Text = UnicodeText.min(1);

// ---- client -> server ----------------------------------------------------------------

export const HelloFrame = z.object({
  type: z.literal('hello'),
  v: z.number().int(),
  token: z.string().min(1).max(4096),
  /** Last seq this device holds per conversation: the server sends what came after, then live. */
  cursors: z.record(Id, SeqSchema).refine((c) => Object.keys(c).length <= 10_000, 'at most 10000 cursors').optional(),
});
export const SendFrame = z.object({ type: z.literal('send'), id: RequestId, conversationId: Id, clientId: ClientId, text: Text });
export const EditFrame = z.object({ type: z.literal('edit'), id: RequestId, conversationId: Id, messageId: Id, clientId: ClientId, text: Text });
export const DeleteFrame = z.object({ type: z.literal('delete'), id: RequestId, conversationId: Id, messageId: Id, clientId: ClientId });
export const ReadFrame = z.object({ type: z.literal('read'), id: RequestId, conversationId: Id, seq: SeqSchema });
export const SyncFrame = z.object({ type: z.literal('sync'), id: RequestId, conversationId: Id, after: SeqSchema });
export const HistoryFrame = z.object({
  type: z.literal('history'),
  id: RequestId,
  conversationId: Id,
  before: SeqSchema.optional(),
  after: SeqSchema.optional(),
  limit: z.number().int().min(1).max(1000).optional(),
});
export const PingFrame = z.object({ type: z.literal('ping'), id: RequestId.optional() });
/** Delivery receipt: this device holds everything up to `seq`. Fire and forget (no answer unless it is wrong). */
export const ReceivedFrame = z.object({ type: z.literal('received'), id: RequestId.optional(), conversationId: Id, seq: SeqSchema });
/** This user is typing in the conversation (`typing: false`: stopped). Ephemeral; expires by itself. */
export const TypingFrame = z.object({ type: z.literal('typing'), conversationId: Id, typing: z.boolean().default(true) });
export const PresenceStatus = z.enum(['online', 'away', 'offline']);
/** Set this device's presence: `away` when the app is in the background, `online` when in use. */
export const PresenceSetFrame = z.object({ type: z.literal('presence.set'), status: z.enum(['online', 'away']) });
/** Watch users' presence (e.g. the peers of the open conversation list). Replaces earlier watches of this connection. */
export const PresenceWatchFrame = z.object({ type: z.literal('presence.watch'), id: RequestId, userIds: z.array(Id).max(1000) });

export const ClientFrame = z.discriminatedUnion('type', [
  HelloFrame, SendFrame, EditFrame, DeleteFrame, ReadFrame, SyncFrame, HistoryFrame, PingFrame,
  ReceivedFrame, TypingFrame, PresenceSetFrame, PresenceWatchFrame,
]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export type ClientFrameType = ClientFrame['type'];
export const CLIENT_FRAME_TYPES = ClientFrame.options.map((o) => o.shape.type.value);

/**
 * What each client frame costs (rates.ts). A frame over its budget is answered with
 * `rate_limited` and `retryAfterMs` and not acted on. Typing is also throttled as a state
 * (`limits.typingIntervalMs`), and every answer counts against the connection's outbound budget.
 */
export const FRAME_RATES = {
  hello: { budget: 'none', cost: 0 },
  send: { budget: 'sends', cost: 1 },
  edit: { budget: 'sends', cost: 1 },
  delete: { budget: 'sends', cost: 1 },
  read: { budget: 'requests', cost: 1 },
  sync: { budget: 'requests', cost: 2 },
  history: { budget: 'requests', cost: 2 },
  ping: { budget: 'requests', cost: 0.5 },
  received: { budget: 'requests', cost: 0.25 },
  typing: { budget: 'requests', cost: 0.25 },
  'presence.set': { budget: 'requests', cost: 1 },
  'presence.watch': { budget: 'requests', cost: 5 },
} as const satisfies Record<ClientFrameType, Rate>;

// ---- server -> client ----------------------------------------------------------------

export const LimitsSchema = z.object({
  maxFrameBytes: z.number().int(),
  maxMessageBytes: z.number().int(),
  sendsPerSecond: z.number(),
  sendBurst: z.number(),
  userSendsPerSecond: z.number(),
  userSendBurst: z.number(),
  requestsPerSecond: z.number(),
  requestBurst: z.number(),
  userRequestsPerSecond: z.number(),
  userRequestBurst: z.number(),
  userChangesPerMinute: z.number(),
  userChangeBurst: z.number(),
  maxPageSize: z.number().int(),
  maxPageBytes: z.number().int(),
  maxGroupMembers: z.number().int(),
  helloTimeoutMs: z.number().int(),
  maxBadFrames: z.number().int(),
  heartbeatIntervalMs: z.number().int(),
  heartbeatTimeoutMs: z.number().int(),
  typingIntervalMs: z.number().int(),
  typingTtlMs: z.number().int(),
  presenceIntervalMs: z.number().int(),
});

export const WelcomeFrame = z.object({
  type: z.literal('welcome'),
  v: z.number().int(),
  userId: Id,
  username: z.string(),
  deviceId: Id,
  nodeId: z.string(),
  limits: LimitsSchema,
});
export const AckFrame = z.object({
  type: z.literal('ack'),
  id: RequestId,
  message: Message,
  /** True when this client id had already been committed: `message` is the original. */
  duplicate: z.boolean(),
});
export const MessageFrame = z.object({ type: z.literal('message'), message: Message });
export const SyncPageFrame = z.object({ type: z.literal('sync.page'), conversationId: Id, messages: z.array(Message) });
export const SyncDoneFrame = z.object({
  type: z.literal('sync.done'),
  conversationId: Id,
  /** Everything up to this seq was sent; from here on the conversation is live. */
  seq: SeqSchema,
  /** Echoes the `sync` request id; absent for catch-ups started by `hello`. */
  id: RequestId.optional(),
});
export const HistoryResultFrame = z.object({ type: z.literal('history.result'), id: RequestId, conversationId: Id, messages: z.array(Message), hasMore: z.boolean() });
export const ReadStateFrame = z.object({ type: z.literal('read.state'), conversationId: Id, seq: SeqSchema, unread: z.number().int() });
export const ConversationFrame = z.object({
  type: z.literal('conversation'),
  /** `added`: you became a member; `updated`: name, members or roles changed; `removed`: you are no longer a member (or it does not exist). */
  change: z.enum(['added', 'updated', 'removed']),
  conversationId: Id,
  /** The conversation as you see it now; absent when `removed`. */
  conversation: Conversation.optional(),
});
export const OkFrame = z.object({ type: z.literal('ok'), id: RequestId });
/**
 * Delivery and read receipts of a conversation as aggregates: every entry up to `delivered` has
 * reached a device of every member, every entry up to `read` was read by every member.
 * (In a direct conversation that is the peer's state.) Per-member detail: REST `/receipts`.
 */
export const ReceiptsFrame = z.object({ type: z.literal('receipts'), conversationId: Id, delivered: SeqSchema, read: SeqSchema });
export const PresenceEntry = z.object({
  userId: Id,
  status: PresenceStatus,
  /** When the user was last online (ms since epoch); null while online, never seen, or hidden by the user. */
  lastSeen: z.number().int().nullable(),
});
export type PresenceEntry = z.infer<typeof PresenceEntry>;
/** Presence of watched users: the current state in answer to `presence.watch`, then changes, batched. */
export const PresenceFrame = z.object({
  type: z.literal('presence'),
  /** Echoes the `presence.watch` id for the initial state. */
  id: RequestId.optional(),
  users: z.array(PresenceEntry),
  /** Users you asked for but share no conversation with: their presence is not yours to see. */
  denied: z.array(Id).optional(),
});
export const TypingStateFrame = z.object({
  type: z.literal('typing'),
  conversationId: Id,
  userId: Id,
  username: z.string(),
  typing: z.boolean(),
  /** Forget this indicator after this long unless it is renewed. */
  expiresInMs: z.number().int(),
});
export const PongFrame = z.object({ type: z.literal('pong'), id: RequestId.optional(), time: z.number().int() });
export const ErrorFrame = z.object({
  type: z.literal('error'),
  /** The request id of the frame this answers, when it had one that could be read. */
  id: RequestId.optional(),
  code: z.enum(ERROR_CODE_NAMES as [string, ...string[]]),
  message: z.string(),
  retryAfterMs: z.number().int().optional(),
  details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

export const ServerFrame = z.discriminatedUnion('type', [
  WelcomeFrame, AckFrame, MessageFrame, SyncPageFrame, SyncDoneFrame, HistoryResultFrame,
  ReadStateFrame, ConversationFrame, OkFrame, PongFrame, ErrorFrame, ReceiptsFrame, PresenceFrame, TypingStateFrame,
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
export type ServerFrameOf<T extends ServerFrame['type']> = Extract<ServerFrame, { type: T }>;
export type ClientFrameOf<T extends ClientFrameType> = Extract<ClientFrame, { type: T }>;
export type ErrorFrame = z.infer<typeof ErrorFrame>;
