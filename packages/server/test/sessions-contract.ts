// The sessions port's contract suite: every adapter runs exactly these tests through a factory
// that makes a fresh "cluster" per test (one registry per simulated node; an in-process adapter
// may hand every node the same instance).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { UserId } from '@confab/protocol';
import type { SessionRegistry } from '../src/ports/sessions.js';
import { newDeviceId, newUserId } from '../src/ids.js';
import { until } from './redis-env.js';

export interface SessionsCluster {
  /** The registry as node `nodeId` sees it; `ttlMs` asks for a short liveness TTL where there is one. */
  node(nodeId: string, opts?: { ttlMs?: number }): Promise<SessionRegistry>;
  /**
   * Makes `nodeId` die the way a killed process does (no cleanup), for adapters with liveness.
   * Undefined for in-process adapters: there, the node and the registry die together.
   */
  crash?(nodeId: string): Promise<void>;
  close(): Promise<void>;
}

const dev = newDeviceId();

/** nodesFor as sorted [node, sorted users] pairs, for comparisons. */
async function snapshot(r: SessionRegistry, users: readonly UserId[]): Promise<[string, string[]][]> {
  const m = await r.nodesFor(users);
  return [...m.entries()].map(([n, us]): [string, string[]] => [n, [...us].sort()]).sort((a, b) => a[0].localeCompare(b[0]));
}

/** `liveness`: the adapter expires nodes whose heartbeat lapsed (its cluster must implement `crash`). */
export function sessionsContract(name: string, factory: () => Promise<SessionsCluster>, opts: { liveness: boolean }): void {
  describe(`sessions contract: ${name}`, () => {
    const withCluster = (fn: (c: SessionsCluster) => Promise<void>) => async () => {
      const c = await factory();
      try {
        await fn(c);
      } finally {
        await c.close();
      }
    };

    test('counts connections per (user, node): listed until the last one unregisters', withCluster(async (c) => {
      const a = await c.node('a');
      const u = newUserId();
      assert.deepEqual(await snapshot(a, [u]), []);
      await a.register(u, dev, 'c1', 'a');
      await a.register(u, newDeviceId(), 'c2', 'a');
      await a.register(u, dev, 'c1', 'a'); // the same connection twice counts once
      assert.deepEqual(await snapshot(a, [u]), [['a', [u]]]);
      await a.unregister(u, 'c1', 'a');
      assert.deepEqual(await snapshot(a, [u]), [['a', [u]]], 'one device left');
      await a.unregister(u, 'nope', 'a'); // unknown: nothing happens
      assert.deepEqual(await snapshot(a, [u]), [['a', [u]]]);
      await a.unregister(u, 'c2', 'a');
      assert.deepEqual(await snapshot(a, [u]), []);
      await a.unregister(u, 'c2', 'a');
      assert.deepEqual(await snapshot(a, [u]), []);
    }));

    test('every node sees every node\'s users, each under each of its nodes', withCluster(async (c) => {
      const [a, b, x] = [await c.node('a'), await c.node('b'), await c.node('c')];
      const [u1, u2, u3, u4] = [newUserId(), newUserId(), newUserId(), newUserId()];
      await a.register(u1, dev, 'a1', 'a');
      await a.register(u2, dev, 'a2', 'a');
      await b.register(u2, dev, 'b2', 'b');
      await x.register(u3, dev, 'c3', 'c');
      const want: [string, string[]][] = [['a', [u1, u2].sort()], ['b', [u2]], ['c', [u3]]];
      for (const r of [a, b, x]) assert.deepEqual(await snapshot(r, [u1, u2, u3, u4]), want);
      // Lists keep the order of the question.
      assert.deepEqual((await b.nodesFor([u2, u1])).get('a'), [u2, u1]);
      await b.unregister(u2, 'b2', 'b');
      assert.deepEqual(await snapshot(a, [u2]), [['a', [u2]]]);
    }));

    test('nodesFor answers for 5,000 users at once', withCluster(async (c) => {
      const nodes = ['a', 'b', 'c'];
      const regs = await Promise.all(nodes.map((n) => c.node(n)));
      const users = Array.from({ length: 5000 }, () => newUserId());
      const want = new Map<string, UserId[]>(nodes.map((n) => [n, []]));
      const work: (() => Promise<void>)[] = [];
      users.forEach((u, i) => {
        if (i % 10 === 9) return; // offline
        const home = i % 3;
        work.push(() => regs[home]!.register(u, dev, `k${i}`, nodes[home]!));
        want.get(nodes[home]!)!.push(u);
        if (i % 7 === 0) { // a second device elsewhere
          const other = (home + 1) % 3;
          work.push(() => regs[other]!.register(u, dev, `k${i}x`, nodes[other]!));
          want.get(nodes[other]!)!.push(u);
        }
      });
      // Set-up in chunks of 500: thousands of commands queued at once can outlast an adapter's
      // command timeout on a busy machine, and the set-up is not what this test is about.
      for (let i = 0; i < work.length; i += 500) await Promise.all(work.slice(i, i + 500).map((w) => w()));
      const t0 = Date.now();
      const got = await regs[0]!.nodesFor(users);
      const ms = Date.now() - t0;
      assert.deepEqual([...got.keys()].sort(), nodes);
      for (const n of nodes) assert.deepEqual(got.get(n)!.slice().sort(), want.get(n)!.slice().sort(), `users of ${n}`);
      // Lists follow the order of the question.
      for (const n of nodes) assert.deepEqual(got.get(n), users.filter((u) => want.get(n)!.includes(u)));
      assert.ok(ms < 2000, `nodesFor(5,000) took ${ms} ms`);
    }));

    test('liveNodes lists every node with a registered connection, each once', withCluster(async (c) => {
      const [a, b] = [await c.node('a'), await c.node('b')];
      const [u, v] = [newUserId(), newUserId()];
      await a.register(u, dev, 'a1', 'a');
      await b.register(u, dev, 'b1', 'b');
      await b.register(v, dev, 'b2', 'b');
      for (const r of [a, b]) {
        const nodes = await r.liveNodes();
        assert.equal(new Set(nodes).size, nodes.length, 'each once');
        assert.ok(nodes.includes('a') && nodes.includes('b'), `got ${nodes.join()}`);
      }
      if (opts.liveness) assert.equal((await b.liveNodes())[0], 'b', 'a distributed adapter lists itself first');
    }));

    test('a node that closes is no longer listed', withCluster(async (c) => {
      const a = await c.node('a');
      const b = await c.node('b');
      const u = newUserId();
      await b.register(u, dev, 'b1', 'b');
      assert.deepEqual(await snapshot(a, [u]), [['b', [u]]]);
      await b.close();
      assert.deepEqual(await snapshot(a, [u]), []);
    }));

    // Only adapters that outlive a node (liveness) have this property: an in-process registry dies with it.
    if (opts.liveness) test('a node that dies without cleanup disappears within its TTL', withCluster(async (c) => {
      assert.ok(c.crash !== undefined, 'an adapter with liveness must let the suite crash a node');
      const ttlMs = 600;
      const a = await c.node('a');
      const d = await c.node('d', { ttlMs });
      const [u, v] = [newUserId(), newUserId()];
      await d.register(u, dev, 'd1', 'd');
      await d.register(v, dev, 'd2', 'd');
      await a.register(v, dev, 'a2', 'a');
      assert.deepEqual(await snapshot(a, [u, v]), [['a', [v]], ['d', [u, v].sort()]]);
      await c.crash('d');
      const t0 = Date.now();
      await until(async () => !(await a.nodesFor([u, v])).has('d') && !(await a.liveNodes()).includes('d'), ttlMs * 3, 'the dead node to disappear');
      const ms = Date.now() - t0;
      assert.ok(ms <= ttlMs + 1200, `gone after ${ms} ms (TTL ${ttlMs} ms)`);
      assert.deepEqual(await snapshot(a, [u, v]), [['a', [v]]]);
    }));
  });
}
