// The presence directory contract against Redis: each simulated node has a RedisSessions (its
// liveness key and heartbeat) and a RedisPresenceDirectory, under a fresh key prefix per test.
import { after } from 'node:test';
import { RedisPresenceDirectory } from '../src/adapters/redis/redis-presence.js';
import { RedisSessions } from '../src/adapters/redis/redis-sessions.js';
import { presenceContract } from './presence-contract.js';
import { dropPrefix, REDIS_URL, redisAvailable, testPrefix } from './redis-env.js';

const prefix = testPrefix('presence');

if (await redisAvailable('presence directory: redis')) {
  after(() => dropPrefix(prefix));
  let run = 0;
  presenceContract('redis', () => {
    const keyPrefix = `${prefix}${run++}:`;
    const nodes = new Map<string, { sessions: RedisSessions; presence: RedisPresenceDirectory }>();
    return Promise.resolve({
      async node(nodeId: string, opts: { ttlMs?: number } = {}) {
        const sessions = await RedisSessions.connect({ url: REDIS_URL, keyPrefix, nodeId, ...opts });
        const presence = await RedisPresenceDirectory.connect({ url: REDIS_URL, keyPrefix, nodeId, ...opts });
        // Closing the directory closes the node, as in app.ts (directory, then sessions).
        const close = presence.close.bind(presence);
        presence.close = async () => { await close(); await sessions.close(); };
        nodes.set(nodeId, { sessions, presence });
        return presence;
      },
      crash(nodeId: string) {
        const n = nodes.get(nodeId);
        n?.sessions.disconnect();
        n?.presence.disconnect();
        return Promise.resolve();
      },
      async close() { await Promise.all([...nodes.values()].map((n) => n.presence.close())); },
    });
  }, { multiNode: true });
}
