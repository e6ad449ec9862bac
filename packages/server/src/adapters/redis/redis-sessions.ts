// The session registry in Redis, for a cluster: which users have devices on which node, so the
// fan-out publishes once per node that needs a message. A node that dies without cleaning up
// stops refreshing its liveness key; other nodes then ignore its entries and sweep them.
import { Reconciler } from './reconciler.js';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DeviceId, UserId } from '@confab/protocol';
import type { SessionRegistry } from '../../ports/sessions.js';
import { closeRedis, DEFAULT_KEY_PREFIX, openRedis, type RedisConnectionOptions } from './connection.js';
import { NodeLiveness, SessionKeys, unwrap } from './session-keys.js';

export interface RedisSessionsOptions extends RedisConnectionOptions {
  /** The node this registry speaks for; register/unregister for any other node are refused. */
  nodeId: string;
  /** Liveness TTL: a node silent this long is dead. Default 15 s. */
  ttlMs?: number;
  /** Heartbeat period (with ±20 % jitter). Default ttlMs / 3. */
  heartbeatMs?: number;
}

/**
 * This node's own connections are kept in memory (`#local`, the truth for this node); Redis holds
 * an index of them that every node reads:
 * - `u:<userId>`: set of node ids with a device of that user; `n:<nodeId>`: that node's users;
 *   `nodes`: every node with entries; `alive:<nodeId>`: a token with a TTL, refreshed by a
 *   heartbeat every TTL/3 (jittered, unref'd timer).
 * - A user is added to the index on its first connection on this node and removed on its last,
 *   so two devices on one node stay listed until both have gone.
 * - `nodesFor` reads the user sets in one pipeline, keeps other nodes whose liveness key exists
 *   (cached briefly) and has dead ones swept; this node's own users come from memory, so they
 *   are exact even while Redis is away (then only they are listed) or being repaired.
 * - The index is reconciled with memory (missing entries added, stale ones removed) on start,
 *   after every reconnect (Redis may have restarted empty), after a failed write and when the
 *   heartbeat finds its key had lapsed (a pause longer than the TTL).
 */
export class RedisSessions implements SessionRegistry {
  readonly #local = new Map<UserId, Set<string>>();
  readonly #liveness: NodeLiveness;
  readonly #keys: SessionKeys;
  readonly #nodeId: string;
  readonly #ttlMs: number;
  readonly #heartbeatMs: number;
  readonly #aliveCacheMs: number;
  readonly #token = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  readonly #log: Logger | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #sync: Reconciler;
  #started = false;
  #lastWarn = 0;
  #nodesCache: { nodes: string[]; until: number } | undefined;

  private constructor(private readonly redis: Redis, opts: RedisSessionsOptions) {
    this.#nodeId = opts.nodeId;
    this.#sync = new Reconciler(() => this.#reconcileOnce(), () => this.#closed);
    this.#keys = new SessionKeys(opts.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.#ttlMs = opts.ttlMs ?? 15_000;
    this.#heartbeatMs = opts.heartbeatMs ?? Math.floor(this.#ttlMs / 3);
    this.#aliveCacheMs = Math.min(1000, Math.floor(this.#ttlMs / 5));
    this.#log = opts.log;
    this.#liveness = new NodeLiveness(redis, this.#keys, this.#nodeId, this.#aliveCacheMs, (err) => this.#log?.debug({ err }, 'sessions: sweep failed'));
    redis.on('ready', () => {
      this.#sync.mark();
      this.#beat();
    });
  }

  /** Connects, announces this node alive and starts the heartbeat. */
  static async connect(opts: RedisSessionsOptions): Promise<RedisSessions> {
    const redis = await openRedis('sessions', opts);
    const s = new RedisSessions(redis, opts);
    try {
      await s.#heartbeat();
    } catch (err) {
      await closeRedis(redis);
      throw err;
    }
    s.#schedule();
    return s;
  }

  async register(userId: UserId, _deviceId: DeviceId, connectionId: string, nodeId: string): Promise<void> {
    this.#own(nodeId);
    let conns = this.#local.get(userId);
    if (!conns) this.#local.set(userId, (conns = new Set()));
    if (conns.has(connectionId)) return;
    conns.add(connectionId);
    if (conns.size === 1) await this.#write((p) => p.sadd(this.#keys.user(userId), nodeId).sadd(this.#keys.node(nodeId), userId));
  }

  async unregister(userId: UserId, connectionId: string, nodeId: string): Promise<void> {
    this.#own(nodeId);
    const conns = this.#local.get(userId);
    if (!conns?.delete(connectionId) || conns.size > 0) return;
    this.#local.delete(userId);
    await this.#write((p) => p.srem(this.#keys.user(userId), nodeId).srem(this.#keys.node(nodeId), userId));
  }

  async nodesFor(userIds: readonly UserId[]): Promise<Map<string, UserId[]>> {
    const out = new Map<string, UserId[]>();
    if (userIds.length === 0) return out;
    let lists: string[][];
    try {
      const p = this.redis.pipeline();
      for (const u of userIds) p.smembers(this.#keys.user(u));
      lists = unwrap<string[]>(await p.exec());
      const alive = await this.#liveness.aliveAmong(lists.flat());
      lists = lists.map((nodes) => nodes.filter((n) => n !== this.#nodeId && alive.has(n)));
    } catch (err) {
      this.#warn(err, 'sessions: redis unavailable, answering for this node only');
      lists = userIds.map(() => []);
    }
    // This node answers for itself from memory: exact even while its index entries are repaired.
    userIds.forEach((u, i) => { if (this.#local.has(u)) lists[i]!.push(this.#nodeId); });
    userIds.forEach((u, i) => {
      for (const n of lists[i]!) {
        let list = out.get(n);
        if (!list) out.set(n, (list = []));
        list.push(u);
      }
    });
    return out;
  }

  /** This node, then the other live nodes (the answer is cached as long as liveness answers are). */
  async liveNodes(): Promise<string[]> {
    const now = Date.now();
    if (this.#nodesCache && this.#nodesCache.until > now) return this.#nodesCache.nodes;
    let others: string[] = [];
    try {
      others = [...await this.#liveness.aliveAmong(await this.redis.smembers(this.#keys.nodes))].sort();
      this.#nodesCache = { nodes: [this.#nodeId, ...others], until: now + this.#aliveCacheMs };
    } catch (err) {
      this.#warn(err, 'sessions: redis unavailable, answering for this node only');
    }
    return [this.#nodeId, ...others];
  }

  /** Stops the heartbeat, removes this node's liveness key and its entries, disconnects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#local.clear();
    try {
      await this.redis.del(this.#keys.alive(this.#nodeId));
      await this.#liveness.sweep();
    } catch (err) {
      this.#log?.warn({ err }, 'sessions: cleanup on close failed; entries expire with the liveness TTL');
    }
    await closeRedis(this.redis);
  }

  /** What a crash looks like to other nodes: stops the heartbeat and drops the connection, no cleanup. */
  disconnect(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.redis.disconnect();
  }

  #own(nodeId: string): void {
    if (nodeId !== this.#nodeId) throw new Error(`this registry speaks for node ${this.#nodeId}, not ${nodeId}`);
    if (this.#closed) throw new Error('session registry closed');
  }

  async #write(build: (p: ReturnType<Redis['pipeline']>) => unknown): Promise<void> {
    try {
      const p = this.redis.pipeline();
      build(p);
      unwrap(await p.exec());
    } catch (err) {
      this.#sync.mark(); // the next heartbeat (or reconnect) repairs the index from memory
      throw err;
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    const delay = this.#heartbeatMs * (0.8 + Math.random() * 0.4);
    this.#timer = setTimeout(() => {
      this.#beat();
      this.#schedule();
    }, delay);
    this.#timer.unref();
  }

  #beat(): void {
    if (this.#closed) return;
    this.#heartbeat().catch((err: unknown) => this.#warn(err, 'sessions: heartbeat failed'));
  }

  /** Refreshes the liveness key; reconciles when it had lapsed or a write failed. */
  async #heartbeat(): Promise<void> {
    const p = this.redis.pipeline()
      .set(this.#keys.alive(this.#nodeId), this.#token, 'PX', this.#ttlMs, 'GET')
      .sadd(this.#keys.nodes, this.#nodeId);
    const [previous] = unwrap<string | null>(await p.exec());
    const first = !this.#started;
    this.#started = true;
    if (previous === null) this.#sync.mark();
    else if (previous !== this.#token) {
      // On the first beat that is our previous life (restarted within the TTL); later, a twin.
      if (first) this.#log?.info({ nodeId: this.#nodeId }, 'sessions: taking over the entries of this node id\'s previous process');
      else this.#log?.error({ nodeId: this.#nodeId }, 'sessions: another process uses this NODE_ID; node ids must be unique in a cluster');
    }
    if (this.#sync.dirty) await this.#sync.run();
    if (Date.now() - this.#liveness.lastSweep > this.#heartbeatMs) {
      this.#liveness.lastSweep = Date.now();
      await this.#liveness.sweep();
    }
  }

  async #reconcileOnce(): Promise<void> {
    const node = this.#nodeId;
    const listed = new Set(await this.redis.smembers(this.#keys.node(node)));
    // Everything below is sent in one synchronous step after the SMEMBERS reply, so any later
    // register/unregister goes out after it and the connection's order makes the result exact.
    const want = [...this.#local.keys()];
    const stale = [...listed].filter((u) => !this.#local.has(u as UserId));
    const CHUNK = 1000;
    const sent: Promise<[Error | null, unknown][] | null>[] = [];
    for (let i = 0; i < Math.max(want.length, stale.length); i += CHUNK) {
      const p = this.redis.pipeline();
      for (const u of want.slice(i, i + CHUNK)) p.sadd(this.#keys.user(u), node).sadd(this.#keys.node(node), u);
      for (const u of stale.slice(i, i + CHUNK)) p.srem(this.#keys.user(u), node).srem(this.#keys.node(node), u);
      sent.push(p.exec());
    }
    for (const r of await Promise.all(sent)) unwrap(r);
    if (want.length > 0 || stale.length > 0) this.#log?.debug({ node, added: want.length, removed: stale.length }, 'sessions: index reconciled');
  }

  #warn(err: unknown, msg: string): void {
    const now = Date.now();
    if (now - this.#lastWarn < 5000) return;
    this.#lastWarn = now;
    this.#log?.warn({ err }, msg);
  }
}
