// Reconnection delays with exponential backoff and full jitter, so a server restart does not
// bring every client back in the same instant (a thundering herd).

/** Options of {@link Backoff}. */
export interface BackoffOptions {
  /** Base delay: the cap of the first attempt's delay. Default 250. */
  minDelayMs?: number;
  /** Largest cap, reached after a few attempts. Default 15000. */
  maxDelayMs?: number;
  /** Random source in [0, 1). Default `Math.random`. */
  random?: () => number;
}

/** Full-jitter delay of attempt `attempt` (0-based): random() x min(maxDelayMs, minDelayMs x 2^attempt). */
export function fullJitterDelay(attempt: number, minDelayMs: number, maxDelayMs: number, random: () => number): number {
  const cap = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt, 60));
  return random() * cap;
}

/** Counts consecutive failed attempts and turns each into a delay; `reset()` after a success. */
export class Backoff {
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly random: () => number;
  private count = 0;

  /** @param options delays and random source. */
  constructor(options: BackoffOptions = {}) {
    this.minDelayMs = options.minDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 15_000;
    this.random = options.random ?? Math.random;
    if (!(this.minDelayMs >= 0) || !(this.maxDelayMs >= this.minDelayMs)) {
      throw new RangeError('backoff needs 0 <= minDelayMs <= maxDelayMs');
    }
  }

  /** Attempts made since the last reset. */
  get attempt(): number {
    return this.count;
  }

  /** The delay before the next attempt; counts the attempt. */
  next(): number {
    return fullJitterDelay(this.count++, this.minDelayMs, this.maxDelayMs, this.random);
  }

  /** Starts over from the base delay (call after a successful connection). */
  reset(): void {
    this.count = 0;
  }
}
