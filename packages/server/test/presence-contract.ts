// The presence directory port's contract suite: every adapter runs these tests through a factory
// that makes a fresh "cluster" per test (one directory per simulated node). An in-process adapter
// is one node: it runs the single-node tests only.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { UserId } from '@confab/protocol';
import type { PresenceDirectory } from '../src/ports/presence.js';
import { newUserId } from '../src/ids.js';
import { until } from './redis-env.js';

export interface PresenceCluster {
  /** The directory as node `nodeId` sees it (with a short liveness TTL when `ttlMs` is given). */
  node(nodeId: string, opts?: { ttlMs?: number }): Promise<PresenceDirectory>;
  /** Makes `nodeId` die the way a killed process does (no cleanup); multi-node adapters only. */
  crash?(nodeId: string): Promise<void>;
  close(): Promise<void>;
}

const of = async (d: PresenceDirectory, users: readonly UserId[]) => {
  const m = await d.get(users);
  return users.map((u) => m.get(u));
};

export function presenceContract(name: string, factory: () => Promise<PresenceCluster>, opts: { multiNode: boolean }): void {
  describe(`presence directory contract: ${name}`, () => {
    const withCluster = (fn: (c: PresenceCluster) => Promise<void>) => async () => {
      const c = await factory();
      try {
        await fn(c);
      } finally {
        await c.close();
      }
    };

    test('a node\'s own state: latest call wins, offline removes it, every user asked is answered', withCluster(async (c) => {
      const a = await c.node('a');
      const [u, v] = [newUserId(), newUserId()];
      assert.deepEqual(await of(a, [u, v]), ['offline', 'offline']);
      await a.setLocal(u, 'online');
      assert.deepEqual(await of(a, [u, v]), ['online', 'offline']);
      await a.setLocal(u, 'away');
      assert.deepEqual(await of(a, [u]), ['away']);
      await a.setLocal(u, 'offline');
      assert.deepEqual(await of(a, [u]), ['offline']);
      assert.equal((await a.get([])).size, 0);
    }));

    if (!opts.multiNode) return;

    test('aggregate over nodes: online if any is online, away if all are away, offline if none', withCluster(async (c) => {
      const [a, b, x] = [await c.node('a'), await c.node('b'), await c.node('c')];
      const u = newUserId();
      await b.setLocal(u, 'away');
      await x.setLocal(u, 'online');
      for (const d of [a, b, x]) assert.deepEqual(await of(d, [u]), ['online']);
      await x.setLocal(u, 'away');
      for (const d of [a, b, x]) assert.deepEqual(await of(d, [u]), ['away']);
      await b.setLocal(u, 'online');
      assert.deepEqual(await of(a, [u]), ['online']);
      await b.setLocal(u, 'offline');
      assert.deepEqual(await of(a, [u]), ['away'], 'still away on c');
      await x.setLocal(u, 'offline');
      for (const d of [a, b, x]) assert.deepEqual(await of(d, [u]), ['offline']);
    }));

    test('get answers for 5,000 users at once', withCluster(async (c) => {
      const [a, b] = [await c.node('a'), await c.node('b')];
      const users = Array.from({ length: 5000 }, () => newUserId());
      await Promise.all(users.map((u, i) => (i % 3 === 0 ? b.setLocal(u, 'online') : i % 3 === 1 ? b.setLocal(u, 'away') : Promise.resolve())));
      const t0 = Date.now();
      const got = await of(a, users);
      assert.ok(Date.now() - t0 < 2000, 'in under 2 s');
      assert.deepEqual(got, users.map((_, i) => (i % 3 === 0 ? 'online' : i % 3 === 1 ? 'away' : 'offline')));
    }));

    test('a node that closes takes its entries with it', withCluster(async (c) => {
      const [a, b] = [await c.node('a'), await c.node('b')];
      const u = newUserId();
      await b.setLocal(u, 'online');
      assert.deepEqual(await of(a, [u]), ['online']);
      await b.close();
      assert.deepEqual(await of(a, [u]), ['offline']);
    }));

    test('a node that dies without cleanup stops counting within its TTL', withCluster(async (c) => {
      assert.ok(c.crash !== undefined, 'a multi-node adapter must let the suite crash a node');
      const ttlMs = 600;
      const a = await c.node('a');
      const d = await c.node('d', { ttlMs });
      const [u, v] = [newUserId(), newUserId()];
      await d.setLocal(u, 'online');
      await d.setLocal(v, 'online');
      await a.setLocal(v, 'away');
      assert.deepEqual(await of(a, [u, v]), ['online', 'online']);
      await c.crash('d');
      const t0 = Date.now();
      await until(async () => (await of(a, [u, v])).join() === 'offline,away', ttlMs * 3, 'the dead node to stop counting');
      assert.ok(Date.now() - t0 <= ttlMs + 1200, `gone after ${Date.now() - t0} ms (TTL ${ttlMs} ms)`);
    }));
  });
}
