// The bus port's contract suite: every adapter runs exactly these tests through a factory that
// makes a fresh "cluster" per test (one Bus per simulated node; an in-process adapter may hand
// every node the same instance).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '@confab/protocol';
import type { Bus, Envelope } from '../src/ports/bus.js';
import { newConversationId, newMessageId, newUserId } from '../src/ids.js';
import { sleep, until } from './redis-env.js';

export interface BusCluster {
  /** The bus as node `nodeId` sees it. */
  node(nodeId: string): Promise<Bus>;
  /** Closes whatever `node` opened. */
  close(): Promise<void>;
}

/** Time to wait for something that must NOT arrive. */
const QUIET_MS = 150;

const conv = newConversationId();
const user = newUserId();

function message(seq: number, text = `m${seq}`): Envelope {
  const m: Message = {
    conversationId: conv, seq, messageId: newMessageId(), kind: 'message', sender: user, senderUsername: 'ann',
    clientId: `c${seq}`, text, createdAt: 1_700_000_000_000 + seq, editedAt: 1_700_000_000_500,
  };
  return { type: 'messages', entries: [{ message: m, userIds: [user] }] };
}

const seqOf = (e: Envelope) => (e.type === 'messages' ? e.entries[0]!.message.seq : -1);

/** Subscribes `nodeId` on its own bus and records what it receives. */
async function listen(cluster: BusCluster, nodeId: string): Promise<{ bus: Bus; got: Envelope[] }> {
  const bus = await cluster.node(nodeId);
  const got: Envelope[] = [];
  await bus.subscribe(nodeId, (e) => got.push(e));
  return { bus, got };
}

export function busContract(name: string, factory: () => Promise<BusCluster>): void {
  describe(`bus contract: ${name}`, () => {
    const withCluster = (fn: (c: BusCluster) => Promise<void>) => async () => {
      const c = await factory();
      try {
        await fn(c);
      } finally {
        await c.close();
      }
    };

    test('delivers to the addressed node only, intact', withCluster(async (c) => {
      const [a, b, x] = [await listen(c, 'a'), await listen(c, 'b'), await listen(c, 'c')];
      const sent: Envelope[] = [
        message(1, 'héllo ✓ 👋 "quoted" \\ \u2028'),
        { type: 'conversation', change: 'added', conversationId: conv, userIds: [user, newUserId()] },
        { type: 'read', conversationId: conv, userId: user, seq: 7, unread: 0 },
      ];
      for (const e of sent) await a.bus.publish('b', e);
      await until(() => b.got.length >= sent.length, 5000, 'delivery to b');
      await sleep(QUIET_MS);
      assert.deepEqual(b.got, sent);
      assert.equal(a.got.length, 0);
      assert.equal(x.got.length, 0);
    }));

    test('keeps publish order per target for 1,000 envelopes', withCluster(async (c) => {
      const a = await listen(c, 'a');
      const [b, x] = [await listen(c, 'b'), await listen(c, 'c')];
      const N = 1000;
      const publishes: Promise<void>[] = [];
      for (let i = 1; i <= N; i++) {
        publishes.push(a.bus.publish('b', message(i)), a.bus.publish('c', message(i)));
      }
      await Promise.all(publishes);
      await until(() => b.got.length >= N && x.got.length >= N, 10_000, `${N} envelopes at b and c (b ${b.got.length}, c ${x.got.length})`);
      const want = Array.from({ length: N }, (_, i) => i + 1);
      assert.deepEqual(b.got.map(seqOf), want);
      assert.deepEqual(x.got.map(seqOf), want);
    }));

    test('a node publishing to itself receives each envelope exactly once, in order', withCluster(async (c) => {
      const a = await listen(c, 'a');
      const b = await listen(c, 'b');
      for (let i = 1; i <= 50; i++) await a.bus.publish('a', message(i));
      await until(() => a.got.length >= 50, 5000, 'self delivery');
      await sleep(QUIET_MS);
      assert.deepEqual(a.got.map(seqOf), Array.from({ length: 50 }, (_, i) => i + 1));
      assert.equal(b.got.length, 0);
    }));

    test('publishing to a node nobody listens to is not an error', withCluster(async (c) => {
      const a = await listen(c, 'a');
      await a.bus.publish('nobody', message(1));
      await sleep(QUIET_MS);
      assert.equal(a.got.length, 0);
    }));

    test('after close, nothing more is delivered and publish does not throw', withCluster(async (c) => {
      const a = await listen(c, 'a');
      const b = await listen(c, 'b');
      await a.bus.publish('b', message(1));
      await until(() => b.got.length === 1, 5000, 'first delivery');
      await b.bus.close();
      await a.bus.publish('b', message(2)).catch(() => assert.fail('publish to a closed node rejected'));
      await b.bus.publish('a', message(3)).catch(() => assert.fail('publish on a closed bus rejected'));
      await sleep(QUIET_MS);
      assert.deepEqual(b.got.map(seqOf), [1]);
    }));
  });
}
