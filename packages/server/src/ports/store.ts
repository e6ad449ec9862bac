// The store port: the source of truth and the inbox. Adapters: SqliteStore (embedded).
//
// Contract (checked by test/store-contract.ts against every adapter):
// - `append` commits a batch atomically-per-entry in order; each accepted entry gets the
//   next seq of its conversation (gap-free, strictly increasing), assigned inside the commit.
//   The promise resolves only once the entries are durable.
// - A committed `message` entry moves its sender's delivered and read cursors to its seq.
// - Idempotency: (conversationId, senderId, clientId) is unique. Appending it again returns
//   the original entry with `duplicate: true` and allocates no seq.
// - Reads see every entry whose append has resolved (read-your-writes on one store).
// - Membership version: every change of a conversation's members (added, removed, whichever
//   code path or node made it) raises its `membersVersion` in the same transaction. An accepted
//   append returns the version its entry was committed under, and `memberSet` reads the members
//   together with their version, so a member list read at version v is exact for every entry
//   committed under v (a node may keep it and skip the read for later entries).
// - Failures to reach the database throw StoreUnavailableError; nothing is half-written.
import type { ConversationId, DeviceId, Message, MessageId, Role, UserId } from '@confab/protocol';

export interface UserRecord {
  id: UserId;
  username: string;
  passwordHash: string;
  createdAt: number;
  /** When the user was last online (ms); null if never. */
  lastSeenAt?: number | null;
  hideLastSeen?: boolean;
}

export interface DeviceRecord {
  id: DeviceId;
  userId: UserId;
  name: string | null;
  createdAt: number;
  revokedAt: number | null;
}

export interface RefreshTokenRecord {
  tokenHash: string;
  deviceId: DeviceId;
  userId: UserId;
  createdAt: number;
  expiresAt: number;
}

export type RotateResult =
  | { status: 'ok'; userId: UserId; deviceId: DeviceId }
  | { status: 'invalid' }
  /** The token had been used already: the device was revoked (token theft response). */
  | { status: 'reused'; deviceId: DeviceId };

export interface UserStore {
  /** Returns false when the username is taken. */
  createUser(user: UserRecord): Promise<boolean>;
  userById(id: UserId): Promise<UserRecord | null>;
  userByUsername(username: string): Promise<UserRecord | null>;
  usersByUsernames(usernames: readonly string[]): Promise<UserRecord[]>;
  createDevice(device: DeviceRecord, token: RefreshTokenRecord): Promise<void>;
  device(id: DeviceId): Promise<DeviceRecord | null>;
  /** Revokes the device and every refresh token of it. */
  revokeDevice(id: DeviceId, at: number): Promise<void>;
  /** Records when these users were last online (one write for many, e.g. at shutdown). */
  setLastSeen(userIds: readonly UserId[], at: number): Promise<void>;
  setHideLastSeen(userId: UserId, hide: boolean): Promise<void>;
  /** Atomically: the old token must be unused, unexpired and its device live; it is marked used and `next` stored. */
  rotateRefreshToken(oldHash: string, next: Omit<RefreshTokenRecord, 'deviceId' | 'userId'>, now: number): Promise<RotateResult>;
}

export interface ConversationRecord {
  id: ConversationId;
  kind: 'direct' | 'group';
  name: string | null;
  createdAt: number;
  updatedAt: number;
  lastSeq: number;
  memberCount: number;
}

export interface MemberSet {
  version: number;
  userIds: UserId[];
}

export interface MemberRecord {
  userId: UserId;
  username: string;
  role: Role;
  joinedAt: number;
  readSeq: number;
  /** Highest seq a device of this member acknowledged receiving (never below readSeq). */
  deliveredSeq: number;
}

/** A conversation as one member sees it in their list. */
export interface ConversationView extends ConversationRecord {
  role: Role;
  readSeq: number;
  unread: number;
  lastMessage: Message | null;
  peer: { id: UserId; username: string } | null;
}

export interface NewGroup {
  id: ConversationId;
  name: string;
  ownerId: UserId;
  memberIds: readonly UserId[];
  createdAt: number;
}

export interface ConversationStore {
  /** Idempotent: the pair (a, b) has at most one direct conversation; returns it. */
  createDirect(id: ConversationId, a: UserId, b: UserId, at: number): Promise<ConversationRecord>;
  createGroup(group: NewGroup): Promise<ConversationRecord>;
  conversation(id: ConversationId): Promise<ConversationRecord | null>;
  rename(id: ConversationId, name: string, at: number): Promise<void>;
  member(id: ConversationId, userId: UserId): Promise<MemberRecord | null>;
  members(id: ConversationId): Promise<MemberRecord[]>;
  memberIds(id: ConversationId): Promise<UserId[]>;
  /** The members' ids with the membership version they are exact for (read together); version 0 and no ids for an unknown conversation. */
  memberSet(id: ConversationId): Promise<MemberSet>;
  /** Adds those not yet members; fails as a whole with 'full' past `maxMembers`. */
  addMembers(id: ConversationId, userIds: readonly UserId[], at: number, maxMembers: number): Promise<UserId[] | 'full'>;
  /** Returns false when the user was not a member. */
  removeMember(id: ConversationId, userId: UserId): Promise<boolean>;
  setRole(id: ConversationId, userId: UserId, role: Role): Promise<void>;
  /** Conversations of a user, most recent activity first. */
  listForUser(userId: UserId): Promise<ConversationView[]>;
  /** The last seq of every conversation the user is a member of (cheap: no counts, no messages). */
  lastSeqsForUser(userId: UserId): Promise<Map<ConversationId, number>>;
  viewForUser(id: ConversationId, userId: UserId): Promise<ConversationView | null>;
  /** Moves the read cursor (and the delivered cursor with it) forward only; returns the cursor after the call and the unread count. */
  advanceReadCursor(id: ConversationId, userId: UserId, seq: number): Promise<{ readSeq: number; unread: number }>;
  /** Moves the delivered cursor forward only; true when it moved. */
  advanceDeliveredCursor(id: ConversationId, userId: UserId, seq: number): Promise<boolean>;
  /** The lowest delivered and read cursors over all members (what everyone has received / read). */
  receiptAggregate(id: ConversationId): Promise<{ delivered: number; read: number; membersVersion: number }>;
  /**
   * Read cursor and unread count of one user in each of these conversations (those they are a
   * member of), counting only entries up to the seq given for each: the count as of that point
   * of the log (a connection asks as of what it has delivered, then counts on from there).
   */
  unreadCounts(userId: UserId, upTo: ReadonlyMap<ConversationId, number>): Promise<Map<ConversationId, { readSeq: number; unread: number }>>;
  /** Those of `candidates` who share at least one conversation with `userId` (the user included). */
  sharedWith(userId: UserId, candidates: readonly UserId[]): Promise<UserId[]>;
}

export interface AppendRequest {
  conversationId: ConversationId;
  kind: 'message' | 'edit' | 'delete';
  messageId: MessageId;
  senderId: UserId;
  clientId: string;
  /** Text of a message or the new text of an edit; empty for delete. */
  text: string;
  createdAt: number;
  /** For edit/delete: the message changed. */
  targetId?: MessageId;
}

export type AppendFailure = 'not_member' | 'message_not_found' | 'message_deleted' | 'client_id_reused';
/** `membersVersion`: the conversation's membership version the entry was committed under (see the contract above). */
export type AppendResult = { ok: true; message: Message; duplicate: boolean; membersVersion: number } | { ok: false; reason: AppendFailure };

export interface MessageStore {
  /** Commits the batch (one transaction where the engine allows: group commit) and returns one result per request, in order. */
  append(batch: readonly AppendRequest[]): Promise<AppendResult[]>;
  /** Entries with seq > after, ascending, at most `limit`. */
  readAfter(id: ConversationId, after: number, limit: number): Promise<Message[]>;
  /** Entries with seq < before, the `limit` closest to it, returned ascending. */
  readBefore(id: ConversationId, before: number, limit: number): Promise<Message[]>;
  message(id: ConversationId, messageId: MessageId): Promise<Message | null>;
}

export interface Store extends UserStore, ConversationStore, MessageStore {
  /** Readiness: resolves when the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
