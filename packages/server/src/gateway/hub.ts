// The node's local connection table: delivers envelopes from the bus to the sessions of
// the users they name.
import type { UserId } from '@confab/protocol';
import type { Envelope, MessageEntry } from '../ports/bus.js';
import type { Metrics } from '../metrics.js';
import { Reorder } from './reorder.js';
import { SharedFrame, type ClientSession } from './session.js';

export class LocalHub {
  readonly #byUser = new Map<UserId, Set<ClientSession>>();
  #count = 0;
  readonly #reorder: Reorder<MessageEntry> | undefined;

  /**
   * @param reorderWaitMs with several nodes publishing, how long an entry that arrives ahead of
   *   an earlier one of its conversation waits for it (see reorder.ts); 0: entries arrive in
   *   commit order (one node), nothing to reorder
   */
  constructor(reorderWaitMs = 0, private readonly metrics?: Metrics) {
    if (reorderWaitMs > 0) {
      this.#reorder = new Reorder(reorderWaitMs, (e) => this.#deliver(e), metrics ? { held: () => metrics.reorderHeld.inc(), gaveUp: () => metrics.reorderGaveUp.inc() } : {});
    }
  }

  add(userId: UserId, session: ClientSession): void {
    let set = this.#byUser.get(userId);
    if (!set) this.#byUser.set(userId, (set = new Set()));
    if (!set.has(session)) this.#count++;
    set.add(session);
  }

  remove(userId: UserId, session: ClientSession): void {
    const set = this.#byUser.get(userId);
    if (set?.delete(session)) {
      this.#count--;
      if (set.size === 0) this.#byUser.delete(userId);
    }
  }

  /** Authenticated connections of one user on this node. */
  countOf(userId: UserId): number {
    return this.#byUser.get(userId)?.size ?? 0;
  }

  /** Authenticated connections on this node. */
  get size(): number {
    return this.#count;
  }

  all(): ClientSession[] {
    return [...this.#byUser.values()].flatMap((s) => [...s]);
  }

  dispatch(envelope: Envelope): void {
    switch (envelope.type) {
      case 'messages':
        for (const entry of envelope.entries) this.#accept(entry);
        break;
      case 'message':
        this.#accept({ message: envelope.message, userIds: envelope.userIds });
        break;
      case 'conversation':
        for (const u of envelope.userIds) for (const s of this.#byUser.get(u) ?? []) s.conversationChanged(envelope.change, envelope.conversationId);
        break;
      case 'read':
        for (const s of this.#byUser.get(envelope.userId) ?? []) s.readChanged(envelope.conversationId, envelope.seq, envelope.unread);
        break;
      case 'receipts': {
        const { conversationId, delivered, read } = envelope;
        const frame = new SharedFrame('receipts', () => ({ type: 'receipts', conversationId, delivered, read }));
        for (const u of envelope.userIds) for (const s of this.#byUser.get(u) ?? []) s.receiptsChanged(frame);
        break;
      }
      case 'revoke':
        for (const s of this.#byUser.get(envelope.userId) ?? []) if (s.deviceId === envelope.deviceId) s.close('auth_failed');
        break;
      case 'typing':
        for (const u of envelope.userIds) for (const s of this.#byUser.get(u) ?? []) s.typingChanged(envelope.conversationId, envelope.userId, envelope.username, envelope.typing);
        break;
    }
  }

  /** Lets go of entries held for reordering. */
  stop(): void {
    this.#reorder?.stop();
  }

  #accept(entry: MessageEntry): void {
    if (this.#reorder) this.#reorder.push(entry);
    else this.#deliver(entry);
  }

  #deliver(entry: MessageEntry): void {
    this.metrics?.commitToNode.observe(Math.max(0, Date.now() - entry.message.createdAt) / 1000);
    // Serialized and framed once per message on this node, not once per recipient connection.
    const frame = new SharedFrame('message', () => ({ type: 'message', message: entry.message }));
    for (const u of entry.userIds) for (const s of this.#byUser.get(u) ?? []) s.deliverLive(entry.message, frame);
  }
}
