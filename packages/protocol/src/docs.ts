// What each frame is for, with an example. docs/protocol.md is generated from this file,
// the schemas and the code registry; a test checks every example against its schema.
import type { z } from 'zod';
import {
  AckFrame, ConversationFrame, DeleteFrame, EditFrame, ErrorFrame, HelloFrame, HistoryFrame, HistoryResultFrame, MessageFrame,
  OkFrame, PingFrame, PongFrame, PresenceFrame, PresenceSetFrame, PresenceWatchFrame, ReadFrame, ReadStateFrame, ReceiptsFrame, ReceivedFrame,
  SendFrame, SyncDoneFrame, SyncFrame, SyncPageFrame, TypingFrame, TypingStateFrame, WelcomeFrame,
} from './frames.js';
import { DEFAULT_LIMITS } from './limits.js';

export interface FrameDoc {
  readonly schema: z.ZodType;
  readonly summary: string;
  readonly example: unknown;
}

const C = '01a2026d-7606-705c-bed7-fb9a4afb2868';
const U = '01a2026d-759c-72cf-bcf4-95578b9fbd3a';
const D = '01a2026d-75df-77b0-b9f4-af28accc21e4';
const M = '01a2026d-7614-776b-a2cc-1631509973b2';
const message = { conversationId: C, seq: 42, messageId: M, kind: 'message', sender: U, senderUsername: 'alice', clientId: 'c-7f3a', text: 'hi all', createdAt: 1795337057812 };
const conversation = { id: C, kind: 'group', name: 'Team', memberCount: 5, role: 'member', createdAt: 1795337000000, updatedAt: 1795337057812, lastSeq: 42, lastMessage: message, readSeq: 40, unread: 2 };

export const CLIENT_FRAME_DOCS: Record<string, FrameDoc> = {
  hello: { schema: HelloFrame, summary: 'First frame of every connection: authenticates with an access token and names the last seq this device holds per conversation. Answered by `welcome`, then per cursor by `sync.page`* and `sync.done`.', example: { type: 'hello', v: 1, token: 'eyJhbGciOiJIUzI1NiJ9…', cursors: { [C]: 40 } } },
  send: { schema: SendFrame, summary: 'Send a text message. Answered by `ack` after the commit. Resending the same `clientId` returns the original message with `duplicate: true`.', example: { type: 'send', id: 'r1', conversationId: C, clientId: 'c-7f3a', text: 'hi all' } },
  edit: { schema: EditFrame, summary: 'Replace the text of your own message: appends an `edit` entry (its own seq) and updates the message.', example: { type: 'edit', id: 'r2', conversationId: C, messageId: M, clientId: 'c-7f3b', text: 'hi everyone' } },
  delete: { schema: DeleteFrame, summary: 'Delete your own message (group owners/admins: any message): appends a `delete` entry; the message becomes a tombstone with empty text.', example: { type: 'delete', id: 'r3', conversationId: C, messageId: M, clientId: 'c-7f3c' } },
  read: { schema: ReadFrame, summary: 'Move your read cursor forward. Answered by `ok`; your other devices get `read.state`. A lower seq than the current cursor changes nothing.', example: { type: 'read', id: 'r4', conversationId: C, seq: 42 } },
  sync: { schema: SyncFrame, summary: 'Catch one conversation up from `after`: `sync.page`* then `sync.done` with this `id`, then live.', example: { type: 'sync', id: 'r5', conversationId: C, after: 40 } },
  history: { schema: HistoryFrame, summary: 'A page of the log (see the REST route for the paging rules; at most `limits.maxPageBytes` bytes of entries, at least one). Answered by `history.result`.', example: { type: 'history', id: 'r6', conversationId: C, before: 41, limit: 50 } },
  ping: { schema: PingFrame, summary: 'Application-level ping; answered by `pong` with the server time.', example: { type: 'ping', id: 'r7' } },
  received: { schema: ReceivedFrame, summary: 'Delivery receipt: this device holds every entry up to `seq` (the SDK sends it by itself, coalesced). Moves your delivered cursor forward (a lower seq changes nothing); no answer unless it is wrong (then an `error`, with `id` if given).', example: { type: 'received', conversationId: C, seq: 42 } },
  typing: { schema: TypingFrame, summary: 'You are typing (repeat it every few seconds while you are), or stopped (`typing: false`). Your state goes to the other members at most once per `limits.typingIntervalMs`, whatever its value: changes in between replace what goes out at the end of the interval. Never stored.', example: { type: 'typing', conversationId: C, typing: true } },
  'presence.set': { schema: PresenceSetFrame, summary: 'This device is in use (`online`) or in the background (`away`). A user is online when any device is online, away when all connected devices are away, offline when none is connected.', example: { type: 'presence.set', status: 'away' } },
  'presence.watch': { schema: PresenceWatchFrame, summary: 'Watch the presence of these users (replaces this connection\'s earlier list; `[]` stops). Answered by a `presence` frame with the same `id` holding their current state; users you share no conversation with are `denied`. Changes follow in `presence` frames, batched, at most one per `limits.presenceIntervalMs`.', example: { type: 'presence.watch', id: 'r8', userIds: [U] } },
};

export const SERVER_FRAME_DOCS: Record<string, FrameDoc> = {
  welcome: { schema: WelcomeFrame, summary: 'The connection is authenticated. Carries the limits the server enforces.', example: { type: 'welcome', v: 1, userId: U, username: 'alice', deviceId: D, nodeId: 'node-1', limits: DEFAULT_LIMITS } },
  ack: { schema: AckFrame, summary: 'A send/edit/delete was committed (durable). `message.seq` is its place in the conversation.', example: { type: 'ack', id: 'r1', message, duplicate: false } },
  message: { schema: MessageFrame, summary: 'A live log entry. Per conversation, a connection receives seq n+1 right after n: never a gap, never a repeat. The sender\'s own devices receive it too.', example: { type: 'message', message } },
  'sync.page': { schema: SyncPageFrame, summary: 'A bounded page (at most `limits.maxPageSize` entries and `limits.maxPageBytes` bytes of them, at least one) of entries the device missed, in order.', example: { type: 'sync.page', conversationId: C, messages: [{ ...message, seq: 41, messageId: '01a2026d-7610-7000-8000-000000000041', clientId: 'c-41', text: 'earlier' }, message] } },
  'sync.done': { schema: SyncDoneFrame, summary: 'The catch-up of a conversation reached the end; what follows is live.', example: { type: 'sync.done', conversationId: C, seq: 42 } },
  'history.result': { schema: HistoryResultFrame, summary: 'Answer to `history`, oldest first.', example: { type: 'history.result', id: 'r6', conversationId: C, messages: [message], hasMore: true } },
  'read.state': { schema: ReadStateFrame, summary: 'Your read cursor moved (on this or another device), or your unread count changed (new or deleted messages; coalesced): `seq` is your read cursor, `unread` the exact count.', example: { type: 'read.state', conversationId: C, seq: 42, unread: 0 } },
  receipts: { schema: ReceiptsFrame, summary: 'The aggregate receipts of a conversation moved: entries up to `delivered` reached every member, entries up to `read` were read by every member (in a direct conversation: the peer). Sent to every member, coalesced. Sending a message moves your own cursors to it.', example: { type: 'receipts', conversationId: C, delivered: 42, read: 40 } },
  presence: { schema: PresenceFrame, summary: 'Presence of watched users: their current state in answer to `presence.watch` (same `id`), then changes, batched per watcher. `lastSeen` is null while online or when the user hides it.', example: { type: 'presence', users: [{ userId: U, status: 'offline', lastSeen: 1795337057812 }] } },
  typing: { schema: TypingStateFrame, summary: 'A member is typing (or stopped). Forget it after `expiresInMs` unless renewed; a message from that member also ends it.', example: { type: 'typing', conversationId: C, userId: U, username: 'alice', typing: true, expiresInMs: 6000 } },
  conversation: { schema: ConversationFrame, summary: 'You were added to a conversation, it changed (name, members, roles), or you were removed.', example: { type: 'conversation', change: 'added', conversationId: C, conversation } },
  ok: { schema: OkFrame, summary: 'A request without a result (e.g. `read`) succeeded.', example: { type: 'ok', id: 'r4' } },
  pong: { schema: PongFrame, summary: 'Answer to `ping`.', example: { type: 'pong', id: 'r7', time: 1795337057812 } },
  error: { schema: ErrorFrame, summary: 'A frame could not be served. `id` names the request when it could be read. The connection stays open unless a close follows.', example: { type: 'error', id: 'r1', code: 'rate_limited', message: 'At most 30 sends per second; retry in 34 ms.', retryAfterMs: 34 } },
};
