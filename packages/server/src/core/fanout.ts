// Fan-out on write: after a commit, one bus publish per node that has online devices of
// members (never one per device or per entry: a committed batch is one envelope per node).
// Publishes leave in commit order.
import type { ConversationId, DeviceId, Message, UserId } from '@confab/protocol';
import type { Bus, Envelope, MessageEntry } from '../ports/bus.js';
import type { SessionRegistry } from '../ports/sessions.js';
import type { MemberSet, Store } from '../ports/store.js';

/** One committed entry and the membership version it was committed under. */
export interface Committed {
  message: Message;
  membersVersion: number;
}

/** Member ids kept over all cached lists (about 100 bytes each); the least recently used lists go first. */
const MAX_CACHED_MEMBER_IDS = 1_000_000;

export class Fanout {
  #chain: Promise<void> = Promise.resolve();
  /**
   * Member lists by conversation, each with the membership version it is exact for. An entry
   * committed under version v reuses a list read at v or later, so a busy conversation costs one
   * member read per membership change per node, not one per committed batch.
   */
  readonly #members = new Map<ConversationId, MemberSet>();
  #cachedIds = 0;

  constructor(
    private readonly store: Store,
    private readonly sessions: SessionRegistry,
    private readonly bus: Bus,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Queues the committed entries for delivery, after everything queued before them. */
  messages(committed: readonly Committed[]): void {
    if (committed.length === 0) return;
    const messages = committed.map((c) => c.message);
    // Lookups start now, outside the chain: with a networked store and session registry, batches
    // overlap their round trips instead of paying them one after another. Only the publishes
    // keep commit order: one envelope per target node for the whole batch.
    const versions = new Map<ConversationId, number>();
    for (const c of committed) {
      const id = c.message.conversationId as ConversationId;
      versions.set(id, Math.max(versions.get(id) ?? 0, c.membersVersion));
    }
    this.#publishAfter(this.#targets(versions), async (byConversation) => {
      const perNode = new Map<string, MessageEntry[]>();
      for (const message of messages) {
        for (const [node, userIds] of byConversation.get(message.conversationId as ConversationId)!) {
          let entries = perNode.get(node);
          if (!entries) perNode.set(node, (entries = []));
          entries.push({ message, userIds });
        }
      }
      for (const [node, entries] of perNode) await this.bus.publish(node, { type: 'messages', entries });
    });
  }

  conversation(change: 'added' | 'updated' | 'removed', conversationId: ConversationId, userIds: readonly UserId[]): void {
    if (userIds.length === 0) return;
    this.#toNodes(userIds, (ids) => ({ type: 'conversation', change, conversationId, userIds: ids }));
  }

  read(conversationId: ConversationId, userId: UserId, seq: number, unread: number): void {
    this.#toNodes([userId], () => ({ type: 'read', conversationId, userId, seq, unread }));
  }

  /** The aggregate receipts moved; `membersVersion` as read with them. */
  receipts(conversationId: ConversationId, membersVersion: number, delivered: number, read: number): void {
    const nodes = this.#membersOf(conversationId, membersVersion).then((userIds) => this.sessions.nodesFor(userIds));
    this.#publishAfter(nodes, (found) => this.#publishTo(found, (ids) => ({ type: 'receipts', conversationId, delivered, read, userIds: ids })));
  }

  revoke(userId: UserId, deviceId: DeviceId): void {
    this.#toNodes([userId], () => ({ type: 'revoke', userId, deviceId }));
  }

  typing(conversationId: ConversationId, from: { userId: UserId; username: string }, typing: boolean, userIds: readonly UserId[]): void {
    this.#toNodes(userIds, (ids) => ({ type: 'typing', conversationId, ...from, typing, userIds: ids }));
  }

  /** Resolves when everything queued so far has been published. */
  flushed(): Promise<void> {
    return this.#chain;
  }

  /**
   * For each conversation (with the highest membership version its entries were committed
   * under), its members grouped by the node they are connected to: member lists from the cache
   * where they are current, one node lookup for all of the members together.
   */
  async #targets(versions: ReadonlyMap<ConversationId, number>): Promise<Map<ConversationId, Map<string, UserId[]>>> {
    const ids = [...versions.keys()];
    const members = await Promise.all(ids.map((id) => this.#membersOf(id, versions.get(id)!)));
    const nodesOf = new Map<UserId, string[]>();
    for (const [node, users] of await this.sessions.nodesFor([...new Set(members.flat())])) {
      for (const u of users) {
        const list = nodesOf.get(u);
        if (list) list.push(node);
        else nodesOf.set(u, [node]);
      }
    }
    return new Map(ids.map((id, i) => {
      const byNode = new Map<string, UserId[]>();
      for (const u of members[i]!) {
        for (const node of nodesOf.get(u) ?? []) {
          const list = byNode.get(node);
          if (list) list.push(u);
          else byNode.set(node, [u]);
        }
      }
      return [id, byNode];
    }));
  }

  /** The members of `id` as of membership version `version` or later. */
  async #membersOf(id: ConversationId, version: number): Promise<UserId[]> {
    const known = this.#members.get(id);
    if (known && known.version >= version) {
      // Most recently used last: the first in the map is the first to go.
      this.#members.delete(id);
      this.#members.set(id, known);
      return known.userIds;
    }
    const read = await this.store.memberSet(id);
    const now = this.#members.get(id);
    if (!now || now.version < read.version) {
      if (now) this.#cachedIds -= now.userIds.length;
      this.#members.delete(id);
      this.#members.set(id, read);
      this.#cachedIds += read.userIds.length;
      for (const [old, list] of this.#members) {
        if (this.#cachedIds <= MAX_CACHED_MEMBER_IDS || old === id) break;
        this.#members.delete(old);
        this.#cachedIds -= list.userIds.length;
      }
    }
    return read.userIds;
  }

  #toNodes(userIds: readonly UserId[], make: (userIds: UserId[]) => Envelope): void {
    this.#publishAfter(this.sessions.nodesFor(userIds), (nodes) => this.#publishTo(nodes, make));
  }

  async #publishTo(nodes: ReadonlyMap<string, UserId[]>, make: (userIds: UserId[]) => Envelope): Promise<void> {
    for (const [node, ids] of nodes) await this.bus.publish(node, make(ids));
  }

  /**
   * Every fan-out starts its lookups at once, outside the chain, and only its publishes wait for
   * the ones queued before: a lookup that waits in line would hold up every message behind it
   * (with Redis busy, receipt lookups one after another were enough to delay deliveries by seconds).
   */
  #publishAfter<T>(lookup: Promise<T>, publish: (found: T) => Promise<void>): void {
    lookup.catch(() => undefined); // rejections are reported by the chain
    this.#chain = this.#chain.then(async () => publish(await lookup)).catch(this.onError);
  }
}
