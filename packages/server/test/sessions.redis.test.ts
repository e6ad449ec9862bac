// The sessions contract against Redis (one RedisSessions per simulated node, a fresh key prefix
// per test), plus what only a shared registry has: refusing other nodes' ids, and rebuilding
// the index after Redis restarts empty.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisSessions } from '../src/adapters/redis/redis-sessions.js';
import { newDeviceId, newUserId } from '../src/ids.js';
import { sessionsContract } from './sessions-contract.js';
import { dropPrefix, PrivateRedis, REDIS_URL, redisAvailable, testPrefix, until } from './redis-env.js';

const prefix = testPrefix('sessions');

if (await redisAvailable('sessions: redis')) {
  after(() => dropPrefix(prefix));
  let run = 0;
  sessionsContract('redis', () => {
    const keyPrefix = `${prefix}${run++}:`;
    const nodes = new Map<string, RedisSessions>();
    return Promise.resolve({
      async node(nodeId: string, opts: { ttlMs?: number } = {}) {
        const r = await RedisSessions.connect({ url: REDIS_URL, keyPrefix, nodeId, ...opts });
        nodes.set(nodeId, r);
        return r;
      },
      crash(nodeId: string) {
        nodes.get(nodeId)?.disconnect();
        return Promise.resolve();
      },
      async close() { await Promise.all([...nodes.values()].map((r) => r.close())); },
    });
  }, { liveness: true });
  describe('redis sessions: ownership and outages', () => {
    const open: RedisSessions[] = [];
    let redis: PrivateRedis | undefined;
    after(async () => {
      await Promise.all(open.map((r) => r.close()));
      await redis?.kill();
      await dropPrefix(prefix);
    });

    test('a registry speaks for its own node only', async () => {
      const a = await RedisSessions.connect({ url: REDIS_URL, keyPrefix: `${prefix}own:`, nodeId: 'a' });
      open.push(a);
      await assert.rejects(a.register(newUserId(), newDeviceId(), 'c', 'b'), /speaks for node a, not b/);
      await assert.rejects(a.unregister(newUserId(), 'c', 'b'), /speaks for node a, not b/);
    });

    test('a node restarted under the same id within its TTL drops what its previous process had listed', async () => {
      const keyPrefix = `${prefix}restart:`;
      const other = await RedisSessions.connect({ url: REDIS_URL, keyPrefix, nodeId: 'other' });
      const before = await RedisSessions.connect({ url: REDIS_URL, keyPrefix, nodeId: 'a' });
      open.push(other);
      const [u, v] = [newUserId(), newUserId()];
      await before.register(u, newDeviceId(), 'c1', 'a');
      before.disconnect(); // kill -9: the liveness key stays
      const after = await RedisSessions.connect({ url: REDIS_URL, keyPrefix, nodeId: 'a' });
      open.push(after);
      await after.register(v, newDeviceId(), 'c2', 'a');
      assert.deepEqual(Object.fromEntries(await other.nodesFor([u, v])), { a: [v] });
    });

    test('close removes the node at once; its liveness key is gone', async () => {
      const keyPrefix = `${prefix}close:`;
      const a = await RedisSessions.connect({ url: REDIS_URL, keyPrefix, nodeId: 'a' });
      const b = await RedisSessions.connect({ url: REDIS_URL, keyPrefix, nodeId: 'b' });
      open.push(a);
      const u = newUserId();
      await b.register(u, newDeviceId(), 'c', 'b');
      await b.close();
      assert.equal((await a.nodesFor([u])).size, 0);
      const { Redis } = await import('ioredis');
      const r = new Redis(REDIS_URL);
      try {
        assert.deepEqual(await r.keys(`${keyPrefix}*b*`), []);
      } finally {
        await r.quit();
      }
    });

    test('while Redis is down a node still sees its own users; after Redis restarts empty, the index is rebuilt', async (t) => {
      redis = await PrivateRedis.start();
      if (!redis) {
        if (process.env.CI === 'true') assert.fail('redis-server is not installed');
        return t.skip('redis-server is not installed');
      }
      const opts = { url: redis.url, ttlMs: 1500 };
      const a = await RedisSessions.connect({ ...opts, nodeId: 'a' });
      const b = await RedisSessions.connect({ ...opts, nodeId: 'b' });
      open.push(a, b);
      const [u, v, w] = [newUserId(), newUserId(), newUserId()];
      await a.register(u, newDeviceId(), 'a-u', 'a');
      await a.register(v, newDeviceId(), 'a-v', 'a');
      await b.register(v, newDeviceId(), 'b-v', 'b');

      await redis.kill();
      // Changes during the outage fail to reach Redis but are kept in memory.
      await assert.rejects(a.register(w, newDeviceId(), 'a-w', 'a'));
      await assert.rejects(a.unregister(u, 'a-u', 'a'));
      assert.deepEqual(Object.fromEntries(await a.nodesFor([u, v, w])), { a: [v, w] }, 'own users only, from memory');

      assert.ok(await redis.start(), 'redis restarted');
      // Both nodes reconnect and reconcile: the index says what their memories say.
      const want = JSON.stringify([['a', [v, w]], ['b', [v]]]);
      const sorted = async (r: RedisSessions) => JSON.stringify([...(await r.nodesFor([u, v, w])).entries()].sort((x, y) => x[0].localeCompare(y[0])));
      await until(async () => (await sorted(a)) === want && (await sorted(b)) === want, 10_000, 'the index to be rebuilt');
    });
  });
}
