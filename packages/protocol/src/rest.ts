// REST request bodies and the route table. Responses reuse the shapes in model.ts.
import { z } from 'zod';
import { ClientId, Conversation, Id, Member, Message, SeqSchema, Session, UnicodeText, User, Username } from './model.js';
import { PresenceEntry } from './frames.js';
import type { Rate } from './rates.js';

export const Password = z.string();
export const RegisterBody = z.object({ username: Username, password: Password, deviceName: UnicodeText.max(64).optional() });
export const LoginBody = z.object({ username: z.string().max(64), password: Password, deviceName: UnicodeText.max(64).optional() });
export const RefreshBody = z.object({ refreshToken: z.string().min(1).max(256) });
export const LogoutBody = z.object({ refreshToken: z.string().min(1).max(256).optional() });
export const DirectBody = z.object({ username: z.string().max(64) });
export const CreateGroupBody = z.object({ name: UnicodeText.trim().min(1).max(100), members: z.array(z.string().max(64)).max(10_000).default([]) });
export const PatchConversationBody = z.object({ name: UnicodeText.trim().min(1).max(100) });
export const AddMembersBody = z.object({ members: z.array(z.string().max(64)).min(1).max(10_000) });
export const RoleBody = z.object({ role: z.enum(['admin', 'member']) });
export const SendBody = z.object({ clientId: ClientId, text: UnicodeText.min(1) });
export const EditBody = z.object({ clientId: ClientId, text: UnicodeText.min(1) });
export const DeleteBody = z.object({ clientId: ClientId });
export const ReadBody = z.object({ seq: SeqSchema });
export const PatchMeBody = z.object({ hideLastSeen: z.boolean() });
export const PresenceQuery = z.object({ users: z.string().max(40_000).transform((s) => s.split(',').filter(Boolean)).pipe(z.array(Id).min(1).max(1000)) });
const QueryInt = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const HistoryQuery = z.object({ before: QueryInt.optional(), after: QueryInt.optional(), limit: z.coerce.number().int().min(1).max(1000).optional() });

export const SessionResponse = Session;
export const MessagesResponse = z.object({ messages: z.array(Message), hasMore: z.boolean() });
export const SendResponse = z.object({ message: Message, duplicate: z.boolean() });
export const ConversationsResponse = z.object({ conversations: z.array(Conversation), totalUnread: z.number().int() });
export const MembersResponse = z.object({ members: z.array(Member) });
export const ReadResponse = z.object({ conversationId: Id, seq: SeqSchema, unread: z.number().int() });
export const MemberReceipt = z.object({ userId: Id, username: z.string(), delivered: SeqSchema, read: SeqSchema });
export const ReceiptsResponse = z.object({
  conversationId: Id,
  /** Aggregates, as in the `receipts` frame. */
  delivered: SeqSchema,
  read: SeqSchema,
  /** Every member's cursors: a message with seq s has reached a member when s <= delivered, was read when s <= read. */
  members: z.array(MemberReceipt),
});
export const PresenceResponse = z.object({ users: z.array(PresenceEntry), denied: z.array(Id) });
export const MeResponse = User.extend({ hideLastSeen: z.boolean() });

export interface RouteDoc {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  readonly path: string;
  readonly auth: boolean;
  readonly summary: string;
  readonly body?: z.ZodType;
  readonly query?: z.ZodType;
  readonly response?: z.ZodType;
  readonly status?: number;
  /** What a call costs and which budget pays (rates.ts): every route declares one. */
  readonly rate: Rate;
}

/** Every REST route; the HTTP layer registers exactly these and the docs list them. */
export const ROUTES = [
  { method: 'GET', path: '/healthz', auth: false, summary: 'Liveness: the process is up. `{"status":"ok"}`.', rate: { budget: 'none', cost: 0 } },
  { method: 'GET', path: '/readyz', auth: false, summary: 'Readiness: the store answers. 200 `{"status":"ready"}`, or 503 `{"status":"unavailable"}`.', rate: { budget: 'none', cost: 0 } },
  { method: 'GET', path: '/metrics', auth: false, summary: 'Prometheus metrics of this node (text exposition format): connections, frames, commits, latencies, store, bus, buffers, errors by code, process and event loop. Keep it away from the public (the example HAProxy config denies it).', rate: { budget: 'none', cost: 0 } },
  { method: 'POST', path: '/v1/auth/register', auth: false, summary: 'Create an account and log in its first device.', body: RegisterBody, response: SessionResponse, status: 201, rate: { budget: 'password', cost: 1 } },
  { method: 'POST', path: '/v1/auth/login', auth: false, summary: 'Log in: a new device id and token pair.', body: LoginBody, response: SessionResponse, rate: { budget: 'password', cost: 1 } },
  { method: 'POST', path: '/v1/auth/refresh', auth: false, summary: 'Trade a refresh token for a new pair (rotation; reuse of an old token logs the device out).', body: RefreshBody, response: SessionResponse, rate: { budget: 'address', cost: 1 } },
  { method: 'POST', path: '/v1/auth/logout', auth: true, summary: 'Log this device out: its refresh tokens are revoked and its access tokens stop working.', body: LogoutBody, status: 204, rate: { budget: 'requests', cost: 1 } },
  { method: 'GET', path: '/v1/me', auth: true, summary: 'The caller, with privacy settings.', response: MeResponse, rate: { budget: 'requests', cost: 1 } },
  { method: 'PATCH', path: '/v1/me', auth: true, summary: 'Change settings: `hideLastSeen` hides your last-seen time from everyone.', body: PatchMeBody, response: MeResponse, rate: { budget: 'changes', cost: 1 } },
  { method: 'GET', path: '/v1/presence', auth: true, summary: 'Presence of users (`?users=id,id`) you share a conversation with; the others are listed in `denied`.', query: PresenceQuery, response: PresenceResponse, rate: { budget: 'requests', cost: 2 } },
  { method: 'GET', path: '/v1/users/:username', auth: true, summary: 'Look a user up by username.', response: User, rate: { budget: 'requests', cost: 1 } },
  { method: 'GET', path: '/v1/conversations', auth: true, summary: 'My conversations, most recent activity first, with last message and unread count.', response: ConversationsResponse, rate: { budget: 'requests', cost: 2 } },
  { method: 'POST', path: '/v1/conversations/direct', auth: true, summary: 'The 1:1 conversation with a user, created on first call (idempotent: one per pair).', body: DirectBody, response: Conversation, rate: { budget: 'changes', cost: 1 } },
  { method: 'POST', path: '/v1/conversations', auth: true, summary: 'Create a group; the caller is its owner.', body: CreateGroupBody, response: Conversation, status: 201, rate: { budget: 'changes', cost: 3 } },
  { method: 'GET', path: '/v1/conversations/:id', auth: true, summary: 'One conversation (members only).', response: Conversation, rate: { budget: 'requests', cost: 1 } },
  { method: 'PATCH', path: '/v1/conversations/:id', auth: true, summary: 'Rename a group (owner/admin).', body: PatchConversationBody, response: Conversation, rate: { budget: 'changes', cost: 1 } },
  { method: 'GET', path: '/v1/conversations/:id/members', auth: true, summary: 'Members of a conversation (members only).', response: MembersResponse, rate: { budget: 'requests', cost: 2 } },
  { method: 'POST', path: '/v1/conversations/:id/members', auth: true, summary: 'Add members to a group (owner/admin). Already-members are ignored.', body: AddMembersBody, response: MembersResponse, rate: { budget: 'changes', cost: 1 } },
  { method: 'DELETE', path: '/v1/conversations/:id/members/:userId', auth: true, summary: 'Remove a member (owner/admin; admins cannot remove the owner or other admins), or leave when `:userId` is yours. An owner who leaves hands ownership to the oldest admin, else the oldest member.', status: 204, rate: { budget: 'changes', cost: 1 } },
  { method: 'PUT', path: '/v1/conversations/:id/members/:userId/role', auth: true, summary: 'Make a member admin or plain member (owner only).', body: RoleBody, response: MembersResponse, rate: { budget: 'changes', cost: 1 } },
  { method: 'GET', path: '/v1/conversations/:id/messages', auth: true, summary: 'History page: `after=N` gives seq > N oldest first; `before=N` (or neither: the latest) gives the page before, still oldest first. `limit` is capped at `maxPageSize`, and a page holds at most `maxPageBytes` bytes of entries (at least one): `hasMore` says whether the next page in that direction has entries.', query: HistoryQuery, response: MessagesResponse, rate: { budget: 'requests', cost: 2 } },
  { method: 'POST', path: '/v1/conversations/:id/messages', auth: true, summary: 'Send a message; answers after the commit, 201. A repeated `clientId` answers 200 with the original and `duplicate: true`. Counts against the per-user send rate.', body: SendBody, response: SendResponse, status: 201, rate: { budget: 'sends', cost: 1 } },
  { method: 'PATCH', path: '/v1/conversations/:id/messages/:messageId', auth: true, summary: 'Edit your own message: appends an `edit` entry.', body: EditBody, response: SendResponse, rate: { budget: 'sends', cost: 1 } },
  { method: 'DELETE', path: '/v1/conversations/:id/messages/:messageId', auth: true, summary: 'Delete your own message (or any, as owner/admin of a group): appends a `delete` entry and leaves a tombstone.', body: DeleteBody, response: SendResponse, rate: { budget: 'sends', cost: 1 } },
  { method: 'GET', path: '/v1/conversations/:id/receipts', auth: true, summary: 'Who has received and read what: aggregates and every member\'s delivered/read cursors (members only).', response: ReceiptsResponse, rate: { budget: 'requests', cost: 2 } },
  { method: 'POST', path: '/v1/conversations/:id/read', auth: true, summary: 'Move your read cursor forward (a lower seq is ignored).', body: ReadBody, response: ReadResponse, rate: { budget: 'requests', cost: 1 } },
] as const satisfies readonly RouteDoc[];
