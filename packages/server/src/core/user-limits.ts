// Per-user send rate, over every device and REST together (the per-connection bucket in the
// gateway only bounds one socket).
import type { UserId } from '@confab/protocol';
import { AppError } from '../errors.js';
import { TokenBucket } from './rate-limit.js';

/** Buckets idle this long are full again and can be forgotten. */
const IDLE_MS = 60_000;

export class UserSendLimiter {
  readonly #buckets = new Map<UserId, { bucket: TokenBucket; used: number }>();

  constructor(private readonly rate: number, private readonly burst: number, private readonly now: () => number = Date.now) {}

  /** Charges one send to `user`; throws `rate_limited` with the wait when over the limit. */
  charge(user: UserId): void {
    const t = this.now();
    let b = this.#buckets.get(user);
    if (!b) {
      if (this.#buckets.size >= 10_000) this.#prune(t);
      this.#buckets.set(user, (b = { bucket: new TokenBucket(this.rate, this.burst, this.now), used: t }));
    }
    b.used = t;
    const wait = b.bucket.take();
    if (wait > 0) throw new AppError('rate_limited', `At most ${this.rate} sends per second per user; retry in ${wait} ms.`, { retryAfterMs: wait });
  }

  #prune(t: number): void {
    for (const [u, b] of this.#buckets) if (t - b.used > IDLE_MS) this.#buckets.delete(u);
  }
}
