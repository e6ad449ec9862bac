// Key names of the Redis session registry and presence directory, the liveness check both use,
// and the Lua script that sweeps dead nodes, kept apart from the adapters so the layout is
// readable in one place.
import type { Redis } from 'ioredis';

/**
 * - `<prefix>u:<userId>`     set of node ids with at least one device of the user
 * - `<prefix>n:<nodeId>`     set of user ids with at least one device on the node
 * - `<prefix>nodes`          set of node ids that may have entries
 * - `<prefix>alive:<nodeId>` the node's liveness token, expires after the TTL
 * - `<prefix>p:<userId>`     hash node id -> 'online' | 'away': the user's presence on each node
 * - `<prefix>pn:<nodeId>`    set of user ids with a field in their `p:` hash for the node
 */
export class SessionKeys {
  constructor(readonly prefix: string) {}
  user(userId: string): string { return `${this.prefix}u:${userId}`; }
  node(nodeId: string): string { return `${this.prefix}n:${nodeId}`; }
  alive(nodeId: string): string { return `${this.prefix}alive:${nodeId}`; }
  presence(userId: string): string { return `${this.prefix}p:${userId}`; }
  presenceNode(nodeId: string): string { return `${this.prefix}pn:${nodeId}`; }
  get nodes(): string { return `${this.prefix}nodes`; }
}

/**
 * Which nodes are alive (their liveness key exists), answered from a short cache; finding a dead
 * one has the dead nodes swept (at most once per cache period). Used by the session registry and
 * the presence directory alike.
 */
export class NodeLiveness {
  readonly #alive = new Map<string, number>();
  /** When a sweep last ran (ms). */
  lastSweep = 0;

  constructor(
    private readonly redis: Redis,
    private readonly keys: SessionKeys,
    private readonly selfId: string,
    private readonly cacheMs: number,
    private readonly onSweepError: (err: unknown) => void,
  ) {}

  /** Which of `nodes` (other than this one) have a live key. */
  async aliveAmong(nodes: Iterable<string>): Promise<Set<string>> {
    const now = Date.now();
    const alive = new Set<string>();
    const unknown: string[] = [];
    for (const n of new Set(nodes)) {
      if (n === this.selfId) continue;
      if ((this.#alive.get(n) ?? 0) > now) alive.add(n);
      else unknown.push(n);
    }
    if (unknown.length === 0) return alive;
    const p = this.redis.pipeline();
    for (const n of unknown) p.exists(this.keys.alive(n));
    const found = unwrap<number>(await p.exec());
    let dead = false;
    unknown.forEach((n, i) => {
      if (found[i] === 1) {
        alive.add(n);
        this.#alive.set(n, now + this.cacheMs);
      } else dead = true;
    });
    if (dead && now - this.lastSweep > this.cacheMs) {
      this.lastSweep = now;
      this.sweep().catch(this.onSweepError);
    }
    return alive;
  }

  sweep(): Promise<unknown> {
    return this.redis.eval(SWEEP_DEAD_NODES, 1, this.keys.nodes, this.keys.prefix);
  }
}

/** Results of a pipeline, or the first error in it. */
export function unwrap<T>(results: [Error | null, unknown][] | null): T[] {
  if (!results) throw new Error('redis pipeline aborted');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value as T;
  });
}

/**
 * KEYS[1] = the `nodes` set, ARGV[1] = the prefix. For every node whose liveness key is gone,
 * removes it from its users' sets and presence hashes and forgets it. Atomic: a node that refreshes its key and then
 * re-adds its entries can never be half-swept. Returns how many nodes were swept.
 */
export const SWEEP_DEAD_NODES = `
local swept = 0
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'alive:' .. n) == 0 then
    local nk = ARGV[1] .. 'n:' .. n
    for _, u in ipairs(redis.call('SMEMBERS', nk)) do
      redis.call('SREM', ARGV[1] .. 'u:' .. u, n)
    end
    redis.call('DEL', nk)
    local pk = ARGV[1] .. 'pn:' .. n
    for _, u in ipairs(redis.call('SMEMBERS', pk)) do
      redis.call('HDEL', ARGV[1] .. 'p:' .. u, n)
    end
    redis.call('DEL', pk)
    redis.call('SREM', KEYS[1], n)
    swept = swept + 1
  end
end
return swept
`;
