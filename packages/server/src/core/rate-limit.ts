// Token bucket: `rate` tokens per second, up to `burst` saved up.
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(private readonly rate: number, private readonly burst: number, private readonly now: () => number = Date.now) {
    this.#tokens = burst;
    this.#last = now();
  }

  /** Takes a token; returns 0 on success, else the milliseconds until one is available. */
  take(): number {
    const t = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((t - this.#last) / 1000) * this.rate);
    this.#last = t;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - this.#tokens) / this.rate) * 1000));
  }
}
