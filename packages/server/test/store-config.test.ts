// STORE, DATABASE_URL and DATABASE_POOL_SIZE: defaults, env and flags, and refusal of bad values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../src/config.js';

test('the store defaults to SQLite; PostgreSQL is chosen by env or flag', () => {
  const d = loadConfig([], {});
  assert.equal(d.store, 'sqlite');
  assert.equal(d.databaseUrl, 'postgres://127.0.0.1:5432/confab');
  assert.equal(d.databasePoolSize, 10);
  const e = loadConfig([], { STORE: 'postgres', DATABASE_URL: 'postgresql://u:p@db:6543/chat', DATABASE_POOL_SIZE: '25' });
  assert.deepEqual([e.store, e.databaseUrl, e.databasePoolSize], ['postgres', 'postgresql://u:p@db:6543/chat', 25]);
  const f = loadConfig(['--store', 'postgres', '--database-pool-size=3'], { STORE: 'sqlite' });
  assert.deepEqual([f.store, f.databasePoolSize], ['postgres', 3], 'flags win over env');
});

test('bad store settings are refused at start', () => {
  assert.throws(() => loadConfig(['--store', 'mysql'], {}), ConfigError);
  assert.throws(() => loadConfig([], { STORE: 'Postgres' }), ConfigError);
  assert.throws(() => loadConfig(['--database-url', 'mysql://127.0.0.1/confab'], {}), ConfigError);
  assert.throws(() => loadConfig(['--database-url', 'postgres://'], {}), ConfigError);
  assert.throws(() => loadConfig(['--database-pool-size', '0'], {}), ConfigError);
  assert.throws(() => loadConfig(['--database-pool-size', 'ten'], {}), ConfigError);
});
