// What each client frame and REST route costs, and which budget pays for it. Every frame type
// and every route declares one (frames.ts: FRAME_RATES, rest.ts: ROUTES), so a new frame or route
// cannot ship without a limit; the server charges by these declarations and docs/protocol.md
// lists them.

/**
 * The budgets requests are paid from. Each is a token bucket (a sustained rate and a burst) per
 * scope; a request over its budget is refused with `rate_limited` and `retryAfterMs`, and nothing
 * of it is done.
 * - `sends`: send, edit, delete. Per connection (`limits.sendsPerSecond`, `sendBurst`) and per user
 *   over every device and REST together (`userSendsPerSecond`, `userSendBurst`).
 * - `requests`: reads, cursor moves, catch-up, history, lookups, presence, typing, pings. Per
 *   connection (`limits.requestsPerSecond`, `requestBurst`) and per user (`userRequestsPerSecond`,
 *   `userRequestBurst`).
 * - `changes`: what reaches other people's devices and lists: conversations created, renamed,
 *   members and roles changed, profile settings. Per user (`limits.userChangesPerMinute`,
 *   `userChangeBurst`).
 * - `password`: requests that hash a password (register, login). Per client address and per node
 *   (`PASSWORD_CHECKS_PER_ADDRESS`, `PASSWORD_CHECKS_PER_SECOND`); registration also per address
 *   per hour (`REGISTRATIONS_PER_ADDRESS`).
 * - `address`: other requests made before authentication (token refresh). Per client address
 *   (`ADDRESS_REQUESTS_PER_SECOND`).
 * - `none`: not charged: `hello` (admission control applies to connections instead), health
 *   checks and metrics.
 */
export type Budget = 'sends' | 'requests' | 'changes' | 'password' | 'address' | 'none';

export interface Rate {
  readonly budget: Budget;
  /** Tokens taken from the budget (fractions allowed); 0 with `none`. */
  readonly cost: number;
}

export const BUDGET_NAMES: readonly Budget[] = ['sends', 'requests', 'changes', 'password', 'address', 'none'];
