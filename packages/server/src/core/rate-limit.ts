// Token buckets: `rate` tokens per second, up to `burst` saved up; and a table of them by key
// (user, client address) that forgets buckets once they are full again.
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(private readonly rate: number, private readonly burst: number, private readonly now: () => number = Date.now) {
    this.#tokens = burst;
    this.#last = now();
  }

  /** Takes `cost` tokens; returns 0 on success, else the milliseconds until they are available (nothing is taken). */
  take(cost = 1): number {
    const wait = this.wait(cost);
    if (wait === 0) this.#tokens -= cost;
    return wait;
  }

  /** The milliseconds until `cost` tokens are available (0: now); takes nothing. */
  wait(cost = 1): number {
    const t = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((t - this.#last) / 1000) * this.rate);
    this.#last = t;
    if (this.#tokens >= cost) return 0;
    return Math.max(1, Math.ceil(((Math.min(cost, this.burst) - this.#tokens) / this.rate) * 1000));
  }

  /** True when the bucket is full again (nothing to remember). */
  full(): boolean {
    return this.#tokens + ((this.now() - this.#last) / 1000) * this.rate >= this.burst;
  }
}

/**
 * One token bucket per key. Memory stays bounded: past `maxKeys` buckets, the full ones are
 * forgotten (a full bucket is the same as a new one), and if that is not enough, the oldest.
 */
export class KeyedBuckets<K> {
  readonly #buckets = new Map<K, TokenBucket>();

  /**
   * @param rate tokens per second (0: no limit, `take` always succeeds)
   * @param burst tokens saved up at most
   */
  constructor(private readonly rate: number, private readonly burst: number, private readonly now: () => number = Date.now, private readonly maxKeys = 100_000) {}

  get unlimited(): boolean {
    return !(this.rate > 0);
  }

  /** Takes `cost` tokens from `key`'s bucket: 0, or the milliseconds to wait (nothing taken). */
  take(key: K, cost = 1): number {
    return this.unlimited ? 0 : this.#bucket(key).take(cost);
  }

  /** The milliseconds until `key` has `cost` tokens (0: now); takes nothing. */
  wait(key: K, cost = 1): number {
    return this.unlimited ? 0 : this.#bucket(key).wait(cost);
  }

  #bucket(key: K): TokenBucket {
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= this.maxKeys) this.#prune();
      this.#buckets.set(key, (b = new TokenBucket(this.rate, this.burst, this.now)));
    }
    return b;
  }

  #prune(): void {
    for (const [k, b] of this.#buckets) if (b.full()) this.#buckets.delete(k);
    for (const k of this.#buckets.keys()) {
      if (this.#buckets.size < this.maxKeys * 0.9) break;
      this.#buckets.delete(k);
    }
  }
}
