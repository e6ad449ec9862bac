// Fan-out on write: after a commit, one bus publish per node that has online devices of
// members (never one per device). Publishes leave in commit order.
import type { ConversationId, DeviceId, Message, UserId } from '@confab/protocol';
import type { Bus, Envelope } from '../ports/bus.js';
import type { SessionRegistry } from '../ports/sessions.js';
import type { Store } from '../ports/store.js';

export class Fanout {
  #chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly sessions: SessionRegistry,
    private readonly bus: Bus,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Queues the committed entries for delivery, after everything queued before them. */
  messages(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    // Lookups (members, then their nodes) start now, outside the chain: with a networked store and
    // session registry, batches overlap their round trips instead of paying them one after another.
    // One member lookup per conversation of the batch. Only the publishes keep commit order.
    const ids = [...new Set(messages.map((m) => m.conversationId as ConversationId))];
    const targets = Promise.all(ids.map(async (id) => [id, await this.sessions.nodesFor(await this.store.memberIds(id))] as const));
    targets.catch(() => undefined); // rejections are reported by the chain below
    this.#enqueue(async () => {
      const nodes = new Map(await targets);
      for (const m of messages) {
        for (const [node, userIds] of nodes.get(m.conversationId as ConversationId)!) await this.bus.publish(node, { type: 'message', message: m, userIds });
      }
    });
  }

  conversation(change: 'added' | 'updated' | 'removed', conversationId: ConversationId, userIds: readonly UserId[]): void {
    if (userIds.length === 0) return;
    this.#enqueue(() => this.#toNodes(userIds, (ids) => ({ type: 'conversation', change, conversationId, userIds: ids })));
  }

  read(conversationId: ConversationId, userId: UserId, seq: number, unread: number): void {
    this.#enqueue(() => this.#toNodes([userId], () => ({ type: 'read', conversationId, userId, seq, unread })));
  }

  receipts(conversationId: ConversationId, userIds: readonly UserId[], delivered: number, read: number): void {
    this.#enqueue(() => this.#toNodes(userIds, (ids) => ({ type: 'receipts', conversationId, delivered, read, userIds: ids })));
  }

  revoke(userId: UserId, deviceId: DeviceId): void {
    this.#enqueue(() => this.#toNodes([userId], () => ({ type: 'revoke', userId, deviceId })));
  }

  typing(conversationId: ConversationId, from: { userId: UserId; username: string }, typing: boolean, userIds: readonly UserId[]): void {
    this.#enqueue(() => this.#toNodes(userIds, (ids) => ({ type: 'typing', conversationId, ...from, typing, userIds: ids })));
  }

  /** Resolves when everything queued so far has been published. */
  flushed(): Promise<void> {
    return this.#chain;
  }

  async #toNodes(userIds: readonly UserId[], make: (userIds: UserId[]) => Envelope): Promise<void> {
    const nodes = await this.sessions.nodesFor(userIds);
    for (const [node, ids] of nodes) await this.bus.publish(node, make(ids));
  }

  #enqueue(task: () => Promise<void>): void {
    this.#chain = this.#chain.then(task).catch(this.onError);
  }
}
