// Client-side pacing of sends with a token bucket, a little stricter than the server's
// announced limits, so normal use never trips the server's `rate_limited`.

/** A token bucket: `capacity` tokens, refilled at `ratePerSecond`. */
export class TokenBucket {
  private rate: number;
  private capacity: number;
  private tokens: number;
  private last: number;

  /**
   * @param ratePerSecond sustained rate
   * @param capacity burst size (and initial fill)
   * @param now clock in ms
   */
  constructor(ratePerSecond: number, capacity: number, private readonly now: () => number = Date.now) {
    this.rate = ratePerSecond;
    this.capacity = Math.max(1, capacity);
    this.tokens = this.capacity;
    this.last = now();
  }

  /** Changes rate and capacity (e.g. from `welcome.limits`), keeping the tokens already earned. */
  configure(ratePerSecond: number, capacity: number): void {
    this.refill();
    this.rate = ratePerSecond;
    this.capacity = Math.max(1, capacity);
    this.tokens = Math.min(this.tokens, this.capacity);
  }

  /** Takes a token: returns 0 when one was taken, else the ms to wait before one is available. */
  take(): number {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    if (!(this.rate > 0)) return 1000;
    return Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }

  private refill(): void {
    const t = this.now();
    const elapsed = Math.max(0, t - this.last);
    this.last = t;
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed / 1000) * this.rate);
  }
}

/**
 * The bucket parameters the client uses for the server's limits: 90% of the rate and 75% of
 * the burst, leaving headroom for network jitter that bunches frames up on arrival.
 */
export function clientPacing(sendsPerSecond: number, sendBurst: number): { rate: number; capacity: number } {
  return { rate: sendsPerSecond * 0.9, capacity: Math.max(1, Math.floor(sendBurst * 0.75)) };
}
