// Puts the entries of each conversation back in seq order as they arrive at a node, before
// they reach its connections. In a cluster every node commits and publishes on its own, so
// seq 7 (committed on node A) can reach a third node after seq 8 (committed on node B). Without
// this stage, every connection of the conversation on that node would see a gap and read the
// store to fill it; with it, the entry that runs ahead waits a few milliseconds for the earlier
// one, and the connections see an unbroken run. Only a gap that outlasts the wait (a publish
// lost while Redis was down, a node that died between commit and publish) falls through to the
// connections, which fill it from the store as before.
import type { ConversationId, Message } from '@confab/protocol';

interface Held<T> {
  /** Highest seq let through in an unbroken run. */
  high: number;
  /** Entries ahead of `high + 1`, by seq. */
  ahead: Map<number, T>;
  timer: NodeJS.Timeout | undefined;
  /** Last arrival (ms), for forgetting idle conversations. */
  at: number;
}

/** Most entries held for one conversation; past it they are let through at once. */
const MAX_AHEAD = 1000;
/** Conversations without an arrival for this long are forgotten (their state restarts at the next entry). */
const IDLE_MS = 60_000;

export class Reorder<T extends { message: Message }> {
  readonly #state = new Map<ConversationId, Held<T>>();
  readonly #sweep: NodeJS.Timeout;

  /**
   * @param waitMs how long an entry that runs ahead waits for the ones before it
   * @param release called with every entry, in seq order per conversation where the wait allowed
   */
  constructor(
    private readonly waitMs: number,
    private readonly release: (entry: T) => void,
    private readonly counts: { held?: () => void; gaveUp?: () => void } = {},
    private readonly now: () => number = Date.now,
  ) {
    this.#sweep = setInterval(() => this.#forgetIdle(), IDLE_MS);
    this.#sweep.unref();
  }

  push(entry: T): void {
    const { conversationId, seq } = entry.message;
    const cid = conversationId as ConversationId;
    const s = this.#state.get(cid);
    if (!s) {
      // The first entry seen here: nothing to compare it with.
      this.#state.set(cid, { high: seq, ahead: new Map(), timer: undefined, at: this.now() });
      this.release(entry);
      return;
    }
    s.at = this.now();
    if (seq > s.high + 1) {
      s.ahead.set(seq, entry);
      this.counts.held?.();
      if (s.ahead.size > MAX_AHEAD) return this.#giveUp(s);
      s.timer ??= setTimeout(() => this.#giveUp(s), this.waitMs);
      return;
    }
    // The next one, or one the connections already have (they drop it).
    this.release(entry);
    if (seq === s.high + 1) {
      s.high = seq;
      this.#drain(s);
    }
  }

  /** Entries held for `cid` (for tests and metrics). */
  heldFor(cid: ConversationId): number {
    return this.#state.get(cid)?.ahead.size ?? 0;
  }

  /** Lets everything held through and stops the timers. */
  stop(): void {
    clearInterval(this.#sweep);
    for (const s of this.#state.values()) this.#giveUp(s);
    this.#state.clear();
  }

  /** Lets through the run that now follows `high`. */
  #drain(s: Held<T>): void {
    for (let next = s.ahead.get(s.high + 1); next; next = s.ahead.get(s.high + 1)) {
      s.ahead.delete(s.high + 1);
      s.high++;
      this.release(next);
    }
    if (s.ahead.size === 0 && s.timer) {
      clearTimeout(s.timer);
      s.timer = undefined;
    }
  }

  /** The missing entries did not come in time: let the held ones through in order; the connections fill the gap. */
  #giveUp(s: Held<T>): void {
    clearTimeout(s.timer);
    s.timer = undefined;
    const seqs = [...s.ahead.keys()].sort((a, b) => a - b);
    const entries = seqs.map((q) => s.ahead.get(q)!);
    s.ahead.clear();
    if (seqs.length === 0) return;
    this.counts.gaveUp?.();
    s.high = seqs[seqs.length - 1]!;
    for (const e of entries) this.release(e);
  }

  #forgetIdle(): void {
    const cutoff = this.now() - IDLE_MS;
    for (const [cid, s] of this.#state) if (s.ahead.size === 0 && s.at < cutoff) this.#state.delete(cid);
  }
}
