// The bus over Redis pub/sub, for a cluster: one channel per node (`<prefix>node:<nodeId>`),
// one PUBLISH per target node, envelopes as JSON. Redis pub/sub is at-most-once, which is
// exactly the bus contract: the store is the source of truth and clients fill gaps by seq.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Bus, Envelope } from '../../ports/bus.js';
import { closeRedis, DEFAULT_KEY_PREFIX, openRedis, type RedisConnectionOptions } from './connection.js';

export interface RedisBusOptions extends RedisConnectionOptions {
  /** Most publishes awaiting Redis's reply; past it, envelopes are dropped. Default 10,000. */
  maxInFlight?: number;
}

type Handler = (envelope: Envelope) => void;

/**
 * - Publishing to a node this bus subscribed for is a synchronous local call: no Redis round
 *   trip, and no echo (nothing is published to our own channel).
 * - `publish` hands the envelope to the connection and resolves at once; it never rejects for a
 *   transport failure. Envelopes to one target leave on one connection, so Redis keeps their
 *   order. While Redis is away, or when `maxInFlight` replies are outstanding, the envelope is
 *   dropped and counted (`dropped`), and a warning is logged at most every 5 s.
 * - The subscriber has its own connection; ioredis re-subscribes it after a reconnect
 *   (`autoResubscribe`, tested in bus.redis.test.ts).
 */
export class RedisBus implements Bus {
  readonly #handlers = new Map<string, Set<Handler>>();
  readonly #nodeOfChannel = new Map<string, string>();
  readonly #prefix: string;
  readonly #maxInFlight: number;
  readonly #log: Logger | undefined;
  #inFlight = 0;
  #closed = false;
  #droppedSinceLog = 0;
  #lastDropLog = 0;
  /** Envelopes dropped because Redis was away or too slow. */
  dropped = 0;

  private constructor(private readonly pub: Redis, private readonly sub: Redis, opts: RedisBusOptions) {
    this.#prefix = opts.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.#maxInFlight = opts.maxInFlight ?? 10_000;
    this.#log = opts.log;
    sub.on('message', (channel: string, payload: string) => this.#receive(channel, payload));
  }

  /** Connects the publisher and the subscriber; rejects if Redis cannot be reached now. */
  static async connect(opts: RedisBusOptions = {}): Promise<RedisBus> {
    const pub = await openRedis('bus-pub', opts);
    try {
      // The subscriber only ever sends (re-)SUBSCRIBEs: no command timeout needed.
      const sub = await openRedis('bus-sub', opts, { commandTimeout: undefined });
      return new RedisBus(pub, sub, opts);
    } catch (err) {
      await closeRedis(pub);
      throw err;
    }
  }

  channel(nodeId: string): string {
    return `${this.#prefix}node:${nodeId}`;
  }

  publish(nodeId: string, envelope: Envelope): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const local = this.#handlers.get(nodeId);
    if (local) {
      this.#dispatch(local, envelope);
      return Promise.resolve();
    }
    if (this.pub.status !== 'ready') this.#drop('redis unavailable');
    else if (this.#inFlight >= this.#maxInFlight) this.#drop('too many publishes in flight');
    else {
      this.#inFlight++;
      this.pub.publish(this.channel(nodeId), JSON.stringify(envelope)).then(
        () => { this.#inFlight--; },
        (err: unknown) => { this.#inFlight--; this.#drop((err as Error).message); },
      );
    }
    return Promise.resolve();
  }

  async subscribe(nodeId: string, handler: Handler): Promise<void> {
    if (this.#closed) throw new Error('bus closed');
    let set = this.#handlers.get(nodeId);
    if (!set) {
      this.#handlers.set(nodeId, (set = new Set()));
      this.#nodeOfChannel.set(this.channel(nodeId), nodeId);
      await this.sub.subscribe(this.channel(nodeId));
    }
    set.add(handler);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.clear();
    // QUIT is answered after every earlier command: pending publishes leave first.
    await Promise.all([closeRedis(this.pub), closeRedis(this.sub)]);
  }

  #receive(channel: string, payload: string): void {
    const nodeId = this.#nodeOfChannel.get(channel);
    const handlers = nodeId === undefined ? undefined : this.#handlers.get(nodeId);
    if (!handlers) return;
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload) as Envelope;
    } catch (err) {
      this.#log?.error({ err, channel }, 'bus: unparsable envelope dropped');
      return;
    }
    this.#dispatch(handlers, envelope);
  }

  #dispatch(handlers: Set<Handler>, envelope: Envelope): void {
    for (const h of handlers) {
      try {
        h(envelope);
      } catch (err) {
        this.#log?.error({ err }, 'bus: envelope handler failed');
      }
    }
  }

  #drop(reason: string): void {
    this.dropped++;
    this.#droppedSinceLog++;
    const now = Date.now();
    if (now - this.#lastDropLog >= 5000) {
      this.#log?.warn({ dropped: this.#droppedSinceLog, total: this.dropped, reason }, 'bus: envelopes dropped (clients recover them from the store)');
      this.#lastDropLog = now;
      this.#droppedSinceLog = 0;
    }
  }
}
