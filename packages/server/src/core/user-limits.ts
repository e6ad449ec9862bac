// Per-user budgets (protocol rates.ts): sends, requests and changes, over every device and REST
// together on this node (the per-connection buckets in the gateway only bound one socket).
import type { Budget, Limits, UserId } from '@confab/protocol';
import { AppError } from '../errors.js';
import { KeyedBuckets } from './rate-limit.js';

export type UserBudget = Extract<Budget, 'sends' | 'requests' | 'changes'>;

export class UserBudgets {
  readonly #buckets: Record<UserBudget, KeyedBuckets<UserId>>;
  readonly #what: Record<UserBudget, string>;

  constructor(limits: Pick<Limits, 'userSendsPerSecond' | 'userSendBurst' | 'userRequestsPerSecond' | 'userRequestBurst' | 'userChangesPerMinute' | 'userChangeBurst'>, now: () => number = Date.now) {
    this.#buckets = {
      sends: new KeyedBuckets(limits.userSendsPerSecond, limits.userSendBurst, now),
      requests: new KeyedBuckets(limits.userRequestsPerSecond, limits.userRequestBurst, now),
      changes: new KeyedBuckets(limits.userChangesPerMinute / 60, limits.userChangeBurst, now),
    };
    this.#what = {
      sends: `At most ${limits.userSendsPerSecond} sends per second per user`,
      requests: `At most ${limits.userRequestsPerSecond} requests per second per user`,
      changes: `At most ${limits.userChangesPerMinute} changes per minute per user`,
    };
  }

  /** Charges `cost` to `user`'s budget; throws `rate_limited` with the wait when over it (nothing charged). */
  charge(budget: UserBudget, user: UserId, cost: number): void {
    const wait = this.#buckets[budget].take(user, cost);
    if (wait > 0) throw new AppError('rate_limited', `${this.#what[budget]}; retry in ${wait} ms.`, { retryAfterMs: wait });
  }
}
