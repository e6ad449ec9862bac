// Key names of the Redis session registry and the Lua script that sweeps dead nodes, kept
// apart from the adapter so the layout is readable in one place.

/**
 * - `<prefix>u:<userId>`     set of node ids with at least one device of the user
 * - `<prefix>n:<nodeId>`     set of user ids with at least one device on the node
 * - `<prefix>nodes`          set of node ids that may have entries
 * - `<prefix>alive:<nodeId>` the node's liveness token, expires after the TTL
 */
export class SessionKeys {
  constructor(readonly prefix: string) {}
  user(userId: string): string { return `${this.prefix}u:${userId}`; }
  node(nodeId: string): string { return `${this.prefix}n:${nodeId}`; }
  alive(nodeId: string): string { return `${this.prefix}alive:${nodeId}`; }
  get nodes(): string { return `${this.prefix}nodes`; }
}

/**
 * KEYS[1] = the `nodes` set, ARGV[1] = the prefix. For every node whose liveness key is gone,
 * removes it from its users' sets and forgets it. Atomic: a node that refreshes its key and then
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
    redis.call('SREM', KEYS[1], n)
    swept = swept + 1
  end
end
return swept
`;
