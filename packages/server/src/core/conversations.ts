// Conversations: direct (one per pair), groups with owner/admins/members, and read cursors.
import type { Conversation, ConversationId, Member, Role, User, UserId } from '@confab/protocol';
import { AppError } from '../errors.js';
import { newConversationId } from '../ids.js';
import type { ConversationView, Store, UserRecord } from '../ports/store.js';
import { isAdmin, requireMember } from './access.js';
import type { Fanout } from './fanout.js';
import type { ReceiptService } from './receipts.js';

export function toWireConversation(v: ConversationView): Conversation {
  const c: Conversation = {
    id: v.id, kind: v.kind, name: v.name, memberCount: v.memberCount, role: v.role, createdAt: v.createdAt,
    updatedAt: v.updatedAt, lastSeq: v.lastSeq, lastMessage: v.lastMessage, readSeq: v.readSeq, unread: v.unread,
  };
  if (v.peer) c.peer = v.peer;
  return c;
}

export class ConversationService {
  constructor(
    private readonly store: Store,
    private readonly fanout: Fanout,
    private readonly maxGroupMembers: number,
    private readonly receipts: ReceiptService,
    private readonly now: () => number = Date.now,
  ) {}

  async user(id: UserId): Promise<User & { hideLastSeen: boolean }> {
    const u = await this.store.userById(id);
    if (!u) throw new AppError('user_not_found');
    return { id: u.id, username: u.username, createdAt: u.createdAt, hideLastSeen: u.hideLastSeen ?? false };
  }

  async setHideLastSeen(id: UserId, hide: boolean): Promise<void> {
    await this.store.setHideLastSeen(id, hide);
  }

  /** Those of `candidates` who share a conversation with `me`. */
  sharedWith(me: UserId, candidates: readonly UserId[]): Promise<UserId[]> {
    return this.store.sharedWith(me, candidates);
  }

  async userByName(username: string): Promise<User> {
    const u = await this.store.userByUsername(username);
    if (!u) throw new AppError('user_not_found', `No user "${username}".`);
    return { id: u.id, username: u.username, createdAt: u.createdAt };
  }

  async list(me: UserId): Promise<{ conversations: Conversation[]; totalUnread: number }> {
    const views = await this.store.listForUser(me);
    return { conversations: views.map(toWireConversation), totalUnread: views.reduce((n, v) => n + v.unread, 0) };
  }

  async get(me: UserId, id: ConversationId): Promise<Conversation> {
    await requireMember(this.store, id, me);
    return this.#view(id, me);
  }

  async direct(me: UserId, username: string): Promise<Conversation> {
    const peer = await this.store.userByUsername(username);
    if (!peer) throw new AppError('user_not_found', `No user "${username}".`);
    if (peer.id === me) throw new AppError('invalid_member', 'A direct conversation needs another user.');
    const id = newConversationId();
    const c = await this.store.createDirect(id, me, peer.id, this.now());
    if (c.id === id) this.fanout.conversation('added', c.id, [me, peer.id]);
    return this.#view(c.id, me);
  }

  async createGroup(me: UserId, name: string, usernames: readonly string[]): Promise<Conversation> {
    const users = await this.#resolve(usernames);
    const memberIds = [...new Set([me, ...users.map((u) => u.id)])];
    if (memberIds.length > this.maxGroupMembers) throw new AppError('conversation_full', `A group has at most ${this.maxGroupMembers} members.`);
    const c = await this.store.createGroup({ id: newConversationId(), name, ownerId: me, memberIds, createdAt: this.now() });
    this.fanout.conversation('added', c.id, memberIds);
    return this.#view(c.id, me);
  }

  async rename(me: UserId, id: ConversationId, name: string): Promise<Conversation> {
    const { conversation, member } = await requireMember(this.store, id, me);
    this.#requireGroup(conversation.kind);
    if (!isAdmin(member)) throw new AppError('forbidden', 'Only the owner or an admin can rename the group.');
    await this.store.rename(id, name, this.now());
    this.fanout.conversation('updated', id, await this.store.memberIds(id));
    return this.#view(id, me);
  }

  async members(me: UserId, id: ConversationId): Promise<Member[]> {
    await requireMember(this.store, id, me);
    return (await this.store.members(id)).map(({ userId, username, role, joinedAt }) => ({ userId, username, role, joinedAt }));
  }

  async addMembers(me: UserId, id: ConversationId, usernames: readonly string[]): Promise<Member[]> {
    const { conversation, member } = await requireMember(this.store, id, me);
    this.#requireGroup(conversation.kind);
    if (!isAdmin(member)) throw new AppError('forbidden', 'Only the owner or an admin can add members.');
    const users = await this.#resolve(usernames);
    const before = await this.store.memberIds(id);
    const added = await this.store.addMembers(id, users.map((u) => u.id), this.now(), this.maxGroupMembers);
    if (added === 'full') throw new AppError('conversation_full', `A group has at most ${this.maxGroupMembers} members.`);
    this.fanout.conversation('added', id, added);
    this.fanout.conversation('updated', id, before);
    return this.members(me, id);
  }

  /** Removes `userId` (an owner/admin removing someone) or leaves (userId is the caller). */
  async removeMember(me: UserId, id: ConversationId, userId: UserId): Promise<void> {
    const { conversation, member } = await requireMember(this.store, id, me);
    this.#requireGroup(conversation.kind);
    if (userId !== me) {
      const target = await this.store.member(id, userId);
      if (!target) throw new AppError('user_not_found', 'That user is not a member of this conversation.');
      const allowed = member.role === 'owner' || (member.role === 'admin' && target.role === 'member');
      if (!allowed) throw new AppError('forbidden', 'Only the owner can remove admins; only the owner or an admin can remove members.');
    }
    await this.store.removeMember(id, userId);
    if (userId === me && member.role === 'owner') await this.#handOver(id);
    this.fanout.conversation('removed', id, [userId]);
    this.fanout.conversation('updated', id, await this.store.memberIds(id));
  }

  async setRole(me: UserId, id: ConversationId, userId: UserId, role: Exclude<Role, 'owner'>): Promise<Member[]> {
    const { conversation, member } = await requireMember(this.store, id, me);
    this.#requireGroup(conversation.kind);
    if (member.role !== 'owner') throw new AppError('forbidden', 'Only the owner can change roles.');
    const target = await this.store.member(id, userId);
    if (!target) throw new AppError('user_not_found', 'That user is not a member of this conversation.');
    if (target.role === 'owner') throw new AppError('invalid_member', 'The owner keeps the owner role.');
    await this.store.setRole(id, userId, role);
    this.fanout.conversation('updated', id, await this.store.memberIds(id));
    return this.members(me, id);
  }

  /**
   * Moves the caller's read cursor forward; tells the caller's other devices. A seq at or below
   * the cursor writes nothing and tells no one; its answer is counted by a read (`count`) or
   * not at all (the WebSocket `read` answers only `ok`: unread is then -1).
   */
  async markRead(me: UserId, id: ConversationId, seq: number, count = true): Promise<{ conversationId: ConversationId; seq: number; unread: number }> {
    const { conversation, member } = await requireMember(this.store, id, me);
    if (seq > conversation.lastSeq) throw new AppError('seq_out_of_range', `The last seq of this conversation is ${conversation.lastSeq}.`);
    if (seq <= member.readSeq) {
      if (!count) return { conversationId: id, seq: member.readSeq, unread: -1 };
      const now = (await this.store.unreadCounts(me, new Map([[id, conversation.lastSeq]]))).get(id);
      return { conversationId: id, seq: now?.readSeq ?? member.readSeq, unread: now?.unread ?? 0 };
    }
    const r = await this.store.advanceReadCursor(id, me, seq);
    this.fanout.read(id, me, r.readSeq, r.unread);
    this.receipts.touch(id);
    return { conversationId: id, seq: r.readSeq, unread: r.unread };
  }

  async #view(id: ConversationId, me: UserId): Promise<Conversation> {
    const v = await this.store.viewForUser(id, me);
    if (!v) throw new AppError('conversation_not_found');
    return toWireConversation(v);
  }

  async #resolve(usernames: readonly string[]): Promise<UserRecord[]> {
    const unique = [...new Set(usernames)];
    const users = await this.store.usersByUsernames(unique);
    if (users.length !== unique.length) {
      const found = new Set(users.map((u) => u.username));
      const missing = unique.filter((n) => !found.has(n));
      throw new AppError('user_not_found', `No such user: ${missing.slice(0, 10).join(', ')}.`, { details: missing.slice(0, 20).map((n) => ({ path: 'members', message: `no user "${n}"` })) });
    }
    return users;
  }

  #requireGroup(kind: 'direct' | 'group'): void {
    if (kind !== 'group') throw new AppError('invalid_member', 'Direct conversations have exactly their two members.');
  }

  /** The owner left: the oldest admin, else the oldest member, becomes owner. */
  async #handOver(id: ConversationId): Promise<void> {
    const rest = await this.store.members(id);
    const next = rest.find((m) => m.role === 'admin') ?? rest[0];
    if (next) await this.store.setRole(id, next.userId, 'owner');
  }
}
