// Failed-login throttling, per client address and per account (the username as typed), in this
// node's memory. Each key has a bucket of `max` failures that refills at `max` per window. An
// attempt reserves one failure from both buckets before the password is checked (so parallel
// guesses are counted too) and gives it back when the login succeeds. Unknown usernames are
// throttled exactly like known ones: the answers never tell whether an account exists.
import { AppError } from '../errors.js';

export interface LoginThrottleOptions {
  /** Failed logins per username per window (0: no limit). */
  perAccount: number;
  /** Failed logins per client address per window (0: no limit). */
  perIp: number;
  windowSec: number;
}

interface Slot { tokens: number; at: number }

/** Keys past this many are pruned (idle ones first, then the oldest), bounding memory under a spray of usernames. */
const MAX_KEYS = 100_000;

class Buckets {
  readonly #slots = new Map<string, Slot>();
  constructor(private readonly max: number, private readonly windowMs: number) {}

  get enabled(): boolean {
    return this.max > 0;
  }

  /** Milliseconds until one failure is available again (0: available now). */
  wait(key: string, t: number): number {
    const s = this.#refilled(key, t);
    return s.tokens >= 1 ? 0 : Math.max(1, Math.ceil(((1 - s.tokens) * this.windowMs) / this.max));
  }

  take(key: string, t: number): void {
    const s = this.#refilled(key, t);
    s.tokens -= 1;
    this.#slots.delete(key);
    this.#slots.set(key, s); // most recently used last: pruning drops the oldest first
    if (this.#slots.size > MAX_KEYS) this.#prune(t);
  }

  give(key: string, t: number, all = false): void {
    const s = this.#slots.get(key);
    if (!s) return;
    s.tokens = all ? this.max : Math.min(this.max, s.tokens + 1);
    s.at = t;
    if (s.tokens >= this.max) this.#slots.delete(key);
  }

  #refilled(key: string, t: number): Slot {
    const s = this.#slots.get(key);
    if (!s) return { tokens: this.max, at: t };
    s.tokens = Math.min(this.max, s.tokens + ((t - s.at) * this.max) / this.windowMs);
    s.at = t;
    return s;
  }

  #prune(t: number): void {
    for (const [k, s] of this.#slots) if (s.tokens + ((t - s.at) * this.max) / this.windowMs >= this.max) this.#slots.delete(k);
    for (const k of this.#slots.keys()) {
      if (this.#slots.size <= MAX_KEYS * 0.9) break;
      this.#slots.delete(k);
    }
  }
}

export class LoginThrottle {
  readonly #accounts: Buckets;
  readonly #ips: Buckets;

  constructor(opts: LoginThrottleOptions, private readonly now: () => number = Date.now) {
    this.#accounts = new Buckets(opts.perAccount, opts.windowSec * 1000);
    this.#ips = new Buckets(opts.perIp, opts.windowSec * 1000);
  }

  /**
   * Reserves one failed attempt for this address and username; throws `rate_limited` (with the
   * wait) when either has none left. Call `succeeded` if the login then succeeds (the account's
   * allowance is full again), `void` if it failed for another reason than the credentials.
   */
  begin(ip: string, username: string): { succeeded(): void; void(): void } {
    const t = this.now();
    const account = username.toLowerCase();
    const wait = Math.max(this.#accounts.enabled ? this.#accounts.wait(account, t) : 0, this.#ips.enabled ? this.#ips.wait(ip, t) : 0);
    if (wait > 0) throw new AppError('rate_limited', `Too many failed logins; retry in ${Math.ceil(wait / 1000)} s.`, { retryAfterMs: wait });
    if (this.#accounts.enabled) this.#accounts.take(account, t);
    if (this.#ips.enabled) this.#ips.take(ip, t);
    return {
      succeeded: () => {
        const now = this.now();
        if (this.#accounts.enabled) this.#accounts.give(account, now, true);
        if (this.#ips.enabled) this.#ips.give(ip, now);
      },
      void: () => {
        const now = this.now();
        if (this.#accounts.enabled) this.#accounts.give(account, now);
        if (this.#ips.enabled) this.#ips.give(ip, now);
      },
    };
  }
}
