// The presence directory in Redis, for a cluster: per user, a hash of node id -> this node's
// aggregate ('online' | 'away'), read by every node. Entries of a node whose liveness key (kept
// by RedisSessions' heartbeat) lapsed are ignored, and swept with its session entries.
import { Reconciler } from './reconciler.js';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { UserId } from '@confab/protocol';
import { aggregate, type PresenceDirectory, type PresenceStatus } from '../../ports/presence.js';
import { closeRedis, DEFAULT_KEY_PREFIX, openRedis, type RedisConnectionOptions } from './connection.js';
import { NodeLiveness, SessionKeys, unwrap } from './session-keys.js';

export interface RedisPresenceOptions extends RedisConnectionOptions {
  /** The node this directory speaks for. */
  nodeId: string;
  /** The liveness TTL of the session registry (how long the liveness answer may be cached: TTL/5, at most 1 s). Default 15 s. */
  ttlMs?: number;
}

/**
 * - `p:<userId>`: hash node id -> status; `pn:<nodeId>`: the users with a field for that node
 *   (so a dead node's fields can be swept and a restarted node can drop its previous life's).
 * - This node's own state is kept in memory (the truth for this node) and mirrored; `get` takes
 *   this node's part from memory and the other nodes' from Redis (one pipeline of HGETALL).
 * - Like RedisSessions, the mirror is reconciled with memory on start, after every reconnect and
 *   after a failed write.
 */
export class RedisPresenceDirectory implements PresenceDirectory {
  readonly #local = new Map<UserId, 'online' | 'away'>();
  readonly #keys: SessionKeys;
  readonly #nodeId: string;
  readonly #liveness: NodeLiveness;
  readonly #log: Logger | undefined;
  #closed = false;
  readonly #sync: Reconciler;
  #repairTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly redis: Redis, opts: RedisPresenceOptions) {
    this.#nodeId = opts.nodeId;
    this.#sync = new Reconciler(() => this.#reconcileOnce(), () => this.#closed);
    this.#keys = new SessionKeys(opts.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.#log = opts.log;
    const ttlMs = opts.ttlMs ?? 15_000;
    this.#liveness = new NodeLiveness(redis, this.#keys, this.#nodeId, Math.min(1000, Math.floor(ttlMs / 5)), (err) => this.#log?.debug({ err }, 'presence: sweep failed'));
    redis.on('ready', () => {
      this.#sync.mark();
      this.#repair();
    });
  }

  static async connect(opts: RedisPresenceOptions): Promise<RedisPresenceDirectory> {
    const redis = await openRedis('presence', opts);
    const d = new RedisPresenceDirectory(redis, opts);
    try {
      await d.#sync.run();
    } catch (err) {
      await closeRedis(redis);
      throw err;
    }
    return d;
  }

  async setLocal(userId: UserId, status: PresenceStatus): Promise<void> {
    if (this.#closed) return;
    const before = this.#local.get(userId);
    if (status === 'offline') this.#local.delete(userId);
    else this.#local.set(userId, status);
    if ((before ?? 'offline') === status) return;
    const node = this.#nodeId;
    try {
      const p = this.redis.pipeline();
      if (status === 'offline') p.hdel(this.#keys.presence(userId), node).srem(this.#keys.presenceNode(node), userId);
      else p.hset(this.#keys.presence(userId), node, status).sadd(this.#keys.presenceNode(node), userId);
      unwrap(await p.exec());
    } catch (err) {
      this.#sync.mark();
      this.#scheduleRepair();
      throw err;
    }
  }

  async get(userIds: readonly UserId[]): Promise<Map<UserId, PresenceStatus>> {
    const out = new Map<UserId, PresenceStatus>();
    if (userIds.length === 0) return out;
    const p = this.redis.pipeline();
    for (const u of userIds) p.hgetall(this.#keys.presence(u));
    const hashes = unwrap<Record<string, string>>(await p.exec());
    const alive = await this.#liveness.aliveAmong(hashes.flatMap((h) => Object.keys(h)));
    userIds.forEach((u, i) => {
      const statuses = Object.entries(hashes[i]!).filter(([n]) => n !== this.#nodeId && alive.has(n)).map(([, s]) => s);
      const mine = this.#local.get(u);
      if (mine) statuses.push(mine);
      out.set(u, aggregate(statuses));
    });
    return out;
  }

  /** Removes this node's entries and disconnects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#repairTimer);
    this.#local.clear();
    try {
      await this.#reconcileOnce();
    } catch (err) {
      this.#log?.warn({ err }, 'presence: cleanup on close failed; entries expire with the liveness TTL');
    }
    await closeRedis(this.redis);
  }

  /** What a crash looks like to other nodes: drops the connection, no cleanup. */
  disconnect(): void {
    this.#closed = true;
    clearTimeout(this.#repairTimer);
    this.redis.disconnect();
  }

  #scheduleRepair(): void {
    if (this.#closed || this.#repairTimer) return;
    this.#repairTimer = setTimeout(() => {
      this.#repairTimer = undefined;
      this.#repair();
    }, 1000);
    this.#repairTimer.unref();
  }

  #repair(): void {
    if (this.#closed || !this.#sync.dirty || this.redis.status !== 'ready') return;
    this.#sync.run().catch((err: unknown) => {
      this.#log?.debug({ err }, 'presence: reconcile failed');
      this.#scheduleRepair();
    });
  }

  async #reconcileOnce(): Promise<void> {
    const node = this.#nodeId;
    const listed = await this.redis.smembers(this.#keys.presenceNode(node));
    // Sent in one synchronous step after the SMEMBERS reply: later setLocal writes go out after
    // it on the same connection, so the result is exact.
    const want = [...this.#local];
    const stale = listed.filter((u) => !this.#local.has(u as UserId));
    const CHUNK = 1000;
    const sent: Promise<[Error | null, unknown][] | null>[] = [];
    for (let i = 0; i < Math.max(want.length, stale.length); i += CHUNK) {
      const p = this.redis.pipeline();
      for (const [u, s] of want.slice(i, i + CHUNK)) p.hset(this.#keys.presence(u), node, s).sadd(this.#keys.presenceNode(node), u);
      for (const u of stale.slice(i, i + CHUNK)) p.hdel(this.#keys.presence(u), node).srem(this.#keys.presenceNode(node), u);
      sent.push(p.exec());
    }
    for (const r of await Promise.all(sent)) unwrap(r);
  }
}
