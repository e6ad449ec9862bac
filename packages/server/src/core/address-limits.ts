// Budgets of requests made before authentication, by client address (protocol rates.ts:
// `password`, `address`), in this node's memory. Hashing a password (argon2id, about 19 MiB and
// tens of milliseconds of a core) is the most expensive thing an anonymous client can ask for:
// it is bounded per address and for the whole node, and registrations also per address per hour.
import { AppError } from '../errors.js';
import { KeyedBuckets } from './rate-limit.js';

export interface AddressLimitOptions {
  /** Password hashes (register, login) per client address per minute (0: no limit). */
  passwordChecksPerAddress: number;
  /** Password hashes per second on this node, a second's worth at once (0: no limit). */
  passwordChecksPerSecond: number;
  /** Accounts registered per client address per hour (0: no limit). */
  registrationsPerAddress: number;
  /** Other unauthenticated requests (token refresh) per client address per second, 10 s worth at once (0: no limit). */
  addressRequestsPerSecond: number;
}

const NODE = 'node';

export class AddressLimits {
  readonly #password: KeyedBuckets<string>;
  readonly #passwordNode: KeyedBuckets<string>;
  readonly #register: KeyedBuckets<string>;
  readonly #requests: KeyedBuckets<string>;

  constructor(private readonly o: AddressLimitOptions, now: () => number = Date.now) {
    this.#password = new KeyedBuckets(o.passwordChecksPerAddress / 60, o.passwordChecksPerAddress, now);
    this.#passwordNode = new KeyedBuckets(o.passwordChecksPerSecond, o.passwordChecksPerSecond, now);
    this.#register = new KeyedBuckets(o.registrationsPerAddress / 3600, o.registrationsPerAddress, now);
    this.#requests = new KeyedBuckets(o.addressRequestsPerSecond, o.addressRequestsPerSecond * 10, now);
  }

  /** A request that will hash a password; `register` also counts an account against the hourly limit. Throws `rate_limited` (nothing charged). */
  password(address: string, register: boolean): void {
    const waits: [KeyedBuckets<string>, string, string][] = [
      [this.#password, address, `At most ${this.o.passwordChecksPerAddress} logins and registrations per minute from one address`],
      [this.#passwordNode, NODE, `This node checks at most ${this.o.passwordChecksPerSecond} passwords per second`],
    ];
    if (register) waits.unshift([this.#register, address, `At most ${this.o.registrationsPerAddress} registrations per hour from one address`]);
    for (const [buckets, key, what] of waits) {
      const wait = buckets.wait(key);
      if (wait > 0) throw new AppError('rate_limited', `${what}; retry in ${wait} ms.`, { retryAfterMs: wait });
    }
    for (const [buckets, key] of waits) buckets.take(key);
  }

  /** Another unauthenticated request from `address`; throws `rate_limited`. */
  request(address: string, cost: number): void {
    const wait = this.#requests.take(address, cost);
    if (wait > 0) throw new AppError('rate_limited', `At most ${this.o.addressRequestsPerSecond} requests per second from one address before signing in; retry in ${wait} ms.`, { retryAfterMs: wait });
  }
}
