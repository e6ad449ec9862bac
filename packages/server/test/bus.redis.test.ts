// The bus contract against Redis pub/sub (one RedisBus per simulated node, a fresh key prefix per
// run), plus what only a networked bus has: Redis going away and coming back.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Envelope } from '../src/ports/bus.js';
import { RedisBus } from '../src/adapters/redis/redis-bus.js';
import { busContract } from './bus-contract.js';
import { PrivateRedis, REDIS_URL, redisAvailable, sleep, testPrefix, until } from './redis-env.js';

const prefix = testPrefix('bus');

if (await redisAvailable('bus: redis')) {
  busContract('redis', () => {
    const buses: RedisBus[] = [];
    const runPrefix = `${prefix}${Math.random().toString(36).slice(2, 8)}:`;
    return Promise.resolve({
      async node() {
        const b = await RedisBus.connect({ url: REDIS_URL, keyPrefix: runPrefix });
        buses.push(b);
        return b;
      },
      async close() { await Promise.all(buses.map((b) => b.close())); },
    });
  });
  describe('redis bus: outages', () => {
    let redis: PrivateRedis | undefined;
    const buses: RedisBus[] = [];
    after(async () => {
      await Promise.all(buses.map((b) => b.close()));
      await redis?.kill();
    });

    test('connecting to an unreachable Redis fails fast with a clear message', async () => {
      const t0 = Date.now();
      await assert.rejects(RedisBus.connect({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 1000 }), /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
      assert.ok(Date.now() - t0 < 3000);
    });

    test('while Redis is down publish drops at once; after it restarts the subscriber is back', async (t) => {
      redis = await PrivateRedis.start();
      if (!redis) {
        if (process.env.CI === 'true') assert.fail('redis-server is not installed');
        return t.skip('redis-server is not installed');
      }
      const [a, b] = [await RedisBus.connect({ url: redis.url }), await RedisBus.connect({ url: redis.url })];
      buses.push(a, b);
      const got: number[] = [];
      await b.subscribe('b', (e: Envelope) => { if (e.type === 'read') got.push(e.seq); });
      const read = (seq: number): Envelope => ({ type: 'read', conversationId: 'c' as never, userId: 'u' as never, seq, unread: 0 });

      await a.publish('b', read(1));
      await until(() => got.length === 1, 5000, 'delivery before the outage');

      await redis.kill();
      await sleep(50);
      const t0 = Date.now();
      for (let i = 0; i < 1000; i++) await a.publish('b', read(100 + i));
      assert.ok(Date.now() - t0 < 500, `1,000 publishes during the outage took ${Date.now() - t0} ms`);
      assert.equal(a.dropped, 1000);

      assert.ok(await redis.start(), 'redis restarted');
      // ioredis reconnects both connections and re-subscribes (autoResubscribe); publish until one lands.
      let seq = 2;
      await until(async () => {
        await a.publish('b', read(seq++));
        await sleep(20);
        return got.length > 1;
      }, 10_000, 'delivery after the restart');
      assert.deepEqual(got.filter((s) => s >= 100), [], 'nothing queued during the outage is replayed');
      assert.ok(got.every((s, i) => i === 0 || s > got[i - 1]!), 'in order');
    });
  });
}
