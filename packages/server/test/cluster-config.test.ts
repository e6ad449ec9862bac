// Cluster options: BUS, REDIS_URL, REDIS_KEY_PREFIX and NODE_ID parse, default and refuse bad
// values with a ConfigError; BUS=redis builds a node on the Redis adapters, and an unreachable
// Redis stops the start with a clear message.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { build, ConfigError, loadConfig, RedisBus, RedisSessions } from '../src/index.js';
import { MemoryBus } from '../src/adapters/memory/memory-bus.js';
import { liveAdapters } from '../src/live.js';
import { RedisPresenceDirectory } from '../src/adapters/redis/redis-presence.js';
import { rmSync } from 'node:fs';
import { pino } from 'pino';
import { tempDir } from './helpers.js';
import { REDIS_URL, redisAvailable, testPrefix, dropPrefix } from './redis-env.js';

describe('cluster configuration', () => {
  test('defaults: one node on the in-process bus', () => {
    const c = loadConfig([], {});
    assert.equal(c.bus, 'memory');
    assert.equal(c.redisUrl, 'redis://127.0.0.1:6379');
    assert.equal(c.redisKeyPrefix, 'confab:');
    assert.match(c.nodeId, /^[A-Za-z0-9._-]+$/);
  });

  test('env and flags, flags winning', () => {
    const env = { BUS: 'redis', REDIS_URL: 'redis://cache:6380/2', NODE_ID: 'n1', REDIS_KEY_PREFIX: 'chat:' };
    const c = loadConfig([], env);
    assert.deepEqual([c.bus, c.redisUrl, c.nodeId, c.redisKeyPrefix], ['redis', 'redis://cache:6380/2', 'n1', 'chat:']);
    const f = loadConfig(['--bus', 'memory', '--redis-url=rediss://u:p@h:1', '--node-id', 'n-2'], env);
    assert.deepEqual([f.bus, f.redisUrl, f.nodeId], ['memory', 'rediss://u:p@h:1', 'n-2']);
  });

  test('bad values are refused with a ConfigError naming the option', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ BUS: 'kafka' }, /BUS must be "memory" or "redis"/],
      [{ BUS: 'Redis' }, /BUS/],
      [{ REDIS_URL: 'http://x:6379' }, /REDIS_URL/],
      [{ REDIS_URL: 'redis://' }, /REDIS_URL/],
      [{ NODE_ID: '' }, /NODE_ID/],
      [{ NODE_ID: 'a b' }, /NODE_ID/],
      [{ NODE_ID: 'x'.repeat(65) }, /NODE_ID/],
      [{ NODE_ID: 'node:1' }, /NODE_ID/],
      [{ REDIS_KEY_PREFIX: '' }, /REDIS_KEY_PREFIX/],
    ];
    for (const [env, re] of bad) assert.throws(() => loadConfig([], env), (e: unknown) => e instanceof ConfigError && re.test(e.message), JSON.stringify(env));
  });
});

if (await redisAvailable('cluster configuration: redis')) {
  describe('cluster configuration: redis', () => {
    test('BUS=redis picks the Redis bus, sessions and presence directory; BUS=memory the in-process ones', async () => {
      const keyPrefix = testPrefix('cfg');
      const log = pino({ level: 'silent' });
      const live = await liveAdapters(loadConfig([], { BUS: 'redis', REDIS_URL, REDIS_KEY_PREFIX: keyPrefix, NODE_ID: 'cfg-a' }), log);
      try {
        assert.ok(live.bus instanceof RedisBus);
        assert.ok(live.sessions instanceof RedisSessions);
        assert.ok(live.presence instanceof RedisPresenceDirectory);
      } finally {
        await live.bus.close();
        await live.presence.close();
        await live.sessions.close();
        await dropPrefix(keyPrefix);
      }
      const mem = await liveAdapters(loadConfig([], {}), log);
      assert.ok(mem.bus instanceof MemoryBus);
    });

    test('an unreachable Redis stops the start with a clear error', async () => {
      const dataDir = tempDir();
      const config = loadConfig(['--port', '0', '--data-dir', dataDir, '--log-level', 'silent'], { BUS: 'redis', REDIS_URL: 'redis://127.0.0.1:1' });
      try {
        await assert.rejects(build(config), /cannot reach Redis at redis:\/\/127\.0\.0\.1:1\/? \(bus-pub\): connect ECONNREFUSED/);
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
}
