// Typing indicators, throttled as a state: per member and conversation, at most one change is
// forwarded to the other members per interval, whatever its value; what arrives in between only
// replaces the state that goes out at the interval's end (the latest wins). Alternating
// true/false as fast as a client can costs the others one frame per interval, not one per frame.
// Per node, in memory; entries go once an interval passes without a change.
import type { ConversationId, UserId } from '@confab/protocol';
import type { Fanout } from './fanout.js';
import type { Store } from '../ports/store.js';

interface State {
  /** When a change was last forwarded (ms). */
  at: number;
  /** The state last forwarded (undefined: none yet). */
  sent: boolean | undefined;
  /** The latest state received since, waiting for the interval's end. */
  pending: boolean | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Forgets the entry once the others have forgotten the indicator (ttl after the last "typing"). */
  expiry: NodeJS.Timeout | undefined;
  from: { userId: UserId; username: string };
  /** Tells the connection that sent the latest state that it may not (not a member). */
  refused: () => void;
}

export class TypingService {
  readonly #states = new Map<string, State>();

  constructor(
    private readonly store: Pick<Store, 'memberIds'>,
    private readonly fanout: Pick<Fanout, 'typing'>,
    private readonly intervalMs: number,
    /** How long receivers show an indicator that is not renewed. */
    private readonly ttlMs: number,
    private readonly onError: (err: unknown) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** `from` is typing (or stopped) in `conversationId`; `refused` is called if they are not a member. */
  set(from: { userId: UserId; username: string }, conversationId: ConversationId, typing: boolean, refused: () => void): void {
    const key = `${conversationId}:${from.userId}`;
    let s = this.#states.get(key);
    if (!s) this.#states.set(key, (s = { at: -Infinity, sent: undefined, pending: undefined, timer: undefined, expiry: undefined, from, refused }));
    s.refused = refused;
    if (s.timer === undefined && this.now() - s.at >= this.intervalMs) this.#forward(key, conversationId, s, typing);
    else s.pending = typing;
  }

  /** Entries held (for tests and metrics). */
  get size(): number {
    return this.#states.size;
  }

  stop(): void {
    for (const s of this.#states.values()) {
      clearTimeout(s.timer);
      clearTimeout(s.expiry);
    }
    this.#states.clear();
  }

  #forward(key: string, cid: ConversationId, s: State, typing: boolean): void {
    // "Stopped" is news only after "typing" was told; a repeated "typing" renews the indicator.
    if (typing || s.sent === true) {
      s.sent = typing;
      s.at = this.now();
      const { from, refused } = s;
      this.store.memberIds(cid).then((members) => {
        if (!members.includes(from.userId)) return refused();
        this.fanout.typing(cid, from, typing, members.filter((u) => u !== from.userId));
      }, this.onError);
    }
    s.timer = setTimeout(() => this.#end(key, cid, s), Math.max(0, s.at + this.intervalMs - this.now()));
    s.timer.unref();
  }

  /**
   * An interval is over: forward what came meanwhile. With nothing new, the entry is forgotten,
   * at once if the others were last told "stopped", else once they have let "typing" expire
   * (until then a "stopped" must still reach them).
   */
  #end(key: string, cid: ConversationId, s: State): void {
    s.timer = undefined;
    if (s.pending === undefined) {
      clearTimeout(s.expiry);
      const left = s.sent === true ? s.at + this.ttlMs - this.now() : 0;
      if (left <= 0) this.#states.delete(key);
      else {
        s.expiry = setTimeout(() => { if (this.#states.get(key) === s && s.timer === undefined) this.#states.delete(key); }, left);
        s.expiry.unref();
      }
      return;
    }
    const typing = s.pending;
    s.pending = undefined;
    this.#forward(key, cid, s, typing);
  }
}
