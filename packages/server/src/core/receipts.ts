// Delivery and read receipts from cursors only: each member has a delivered and a read
// cursor per conversation (no row per member per message). The aggregate (lowest cursor over
// the members) is what senders see as ✓✓ and "read"; it is pushed to the members when it
// moves, at most once per interval per conversation.
import type { ConversationId, UserId } from '@confab/protocol';
import { AppError } from '../errors.js';
import type { Store } from '../ports/store.js';
import { requireMember } from './access.js';
import type { Fanout } from './fanout.js';

interface Published {
  delivered: number;
  read: number;
  at: number;
  timer: NodeJS.Timeout | undefined;
}

/** Conversations whose last publication is remembered (older ones are forgotten first). */
const MAX_REMEMBERED = 50_000;

export class ReceiptService {
  readonly #published = new Map<ConversationId, Published>();
  readonly #inFlight = new Set<Promise<void>>();
  #closed = false;

  constructor(
    private readonly store: Store,
    private readonly fanout: Fanout,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** A device of `me` holds everything up to `seq`; a seq the delivered cursor already covers writes nothing. */
  async received(me: UserId, id: ConversationId, seq: number): Promise<void> {
    const { conversation, member } = await requireMember(this.store, id, me);
    if (seq > conversation.lastSeq) throw new AppError('seq_out_of_range', `The last seq of this conversation is ${conversation.lastSeq}.`);
    // A receipt for what the cursor already covers writes nothing.
    if (seq <= member.deliveredSeq) return;
    if (await this.store.advanceDeliveredCursor(id, me, seq)) this.touch(id);
  }

  /** Per-member cursors and the aggregates (members only). */
  async view(me: UserId, id: ConversationId): Promise<{ conversationId: ConversationId; delivered: number; read: number; members: { userId: string; username: string; delivered: number; read: number }[] }> {
    await requireMember(this.store, id, me);
    const members = await this.store.members(id);
    const delivered = members.reduce((m, x) => Math.min(m, x.deliveredSeq), Number.MAX_SAFE_INTEGER);
    const read = members.reduce((m, x) => Math.min(m, x.readSeq), Number.MAX_SAFE_INTEGER);
    return {
      conversationId: id,
      delivered: members.length ? delivered : 0,
      read: members.length ? read : 0,
      members: members.map((m) => ({ userId: m.userId, username: m.username, delivered: m.deliveredSeq, read: m.readSeq })),
    };
  }

  /** Some member's cursor may have moved: publish the aggregate now, or at the end of the interval. */
  touch(id: ConversationId): void {
    if (this.#closed) return;
    let p = this.#published.get(id);
    if (!p) {
      p = { delivered: -1, read: -1, at: 0, timer: undefined };
      this.#remember(id, p);
    }
    if (p.timer) return;
    const wait = p.at + this.intervalMs - this.now();
    const entry = p;
    if (wait <= 0) this.#track(this.#publish(id, entry));
    else {
      entry.timer = setTimeout(() => { entry.timer = undefined; this.#track(this.#publish(id, entry)); }, wait);
      entry.timer.unref();
    }
  }

  /** Stops pending timers and waits for publications under way (shutdown, before the store closes). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const p of this.#published.values()) clearTimeout(p.timer);
    this.#published.clear();
    await Promise.all([...this.#inFlight]);
  }

  #track(p: Promise<void>): void {
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  async #publish(id: ConversationId, p: Published): Promise<void> {
    p.at = this.now();
    try {
      const agg = await this.store.receiptAggregate(id);
      if (agg.delivered === p.delivered && agg.read === p.read) return;
      p.delivered = agg.delivered;
      p.read = agg.read;
      this.fanout.receipts(id, agg.membersVersion, agg.delivered, agg.read);
    } catch (err) {
      this.onError(err);
    }
  }

  #remember(id: ConversationId, p: Published): void {
    if (this.#published.size >= MAX_REMEMBERED) {
      for (const [old, q] of this.#published) {
        if (q.timer) continue;
        this.#published.delete(old);
        if (this.#published.size < MAX_REMEMBERED * 0.9) break;
      }
    }
    this.#published.set(id, p);
  }
}
