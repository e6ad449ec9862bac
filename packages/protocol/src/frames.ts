// Every WebSocket frame of protocol v1, declared once. Types, runtime validation and
// docs/protocol.md all come from these schemas.
import { z } from 'zod';
import { ERROR_CODE_NAMES } from './codes.js';
import { ClientId, Conversation, Id, Message, RequestId, SeqSchema, UnicodeText } from './model.js';

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

export const ClientFrame = z.discriminatedUnion('type', [HelloFrame, SendFrame, EditFrame, DeleteFrame, ReadFrame, SyncFrame, HistoryFrame, PingFrame]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export type ClientFrameType = ClientFrame['type'];
export const CLIENT_FRAME_TYPES = ClientFrame.options.map((o) => o.shape.type.value);

// ---- server -> client ----------------------------------------------------------------

export const LimitsSchema = z.object({
  maxFrameBytes: z.number().int(),
  maxMessageBytes: z.number().int(),
  sendsPerSecond: z.number(),
  sendBurst: z.number(),
  maxPageSize: z.number().int(),
  maxGroupMembers: z.number().int(),
  helloTimeoutMs: z.number().int(),
  maxBadFrames: z.number().int(),
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
  ReadStateFrame, ConversationFrame, OkFrame, PongFrame, ErrorFrame,
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
export type ServerFrameOf<T extends ServerFrame['type']> = Extract<ServerFrame, { type: T }>;
export type ClientFrameOf<T extends ClientFrameType> = Extract<ClientFrame, { type: T }>;
export type ErrorFrame = z.infer<typeof ErrorFrame>;
