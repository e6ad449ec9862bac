// End to end on PostgreSQL: nodes built from config with STORE=postgres (as `confab serve
// --store postgres` builds them), SDK clients over real sockets, and two nodes sharing one
// database for the store's cross-node guarantees (history and idempotent resend).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfabApi } from '@confab/sdk';
import { device, seqs, type Device } from './clients.js';
import { register, startNode, uname, type TestNode } from './helpers.js';
import { postgresSuite } from './pg.js';

await postgresSuite('chat on a PostgreSQL store', (db) => {
  const start = () => startNode({ config: { store: 'postgres', databaseUrl: db.schemaUrl, databasePoolSize: 3 } });

  test('two SDK clients chat 1:1 on a node with STORE=postgres; the log is in PostgreSQL', async () => {
    const node = await start();
    const devices: Device[] = [];
    try {
      const alice = await register(node.url, uname('pga'));
      const bob = await register(node.url, uname('pgb'));
      const a = await device(node.url, alice);
      const b = await device(node.url, bob);
      devices.push(a, b);
      const conv = await a.api.direct(bob.user.username);
      assert.equal((await b.api.direct(alice.user.username)).id, conv.id, 'one direct conversation per pair');
      for (let i = 0; i < 10; i++) {
        const m = await (i % 2 === 0 ? a : b).client.send(conv.id, `turn ${i} ✓`);
        assert.equal(m.seq, i + 1);
      }
      const seenA = await a.waitFor(conv.id, 10);
      const seenB = await b.waitFor(conv.id, 10);
      assert.deepEqual(seqs(seenB), Array.from({ length: 10 }, (_, i) => i + 1));
      assert.deepEqual(seenA.map((m) => m.messageId), seenB.map((m) => m.messageId));
      const edit = await a.client.edit(conv.id, seenA[0]!.messageId, 'turn 0, edited');
      assert.equal(edit.seq, 11);
      const list = await a.api.conversations();
      assert.equal(list.conversations[0]?.lastMessage?.seq, 10);
      assert.equal(list.conversations[0]?.unread, 1, "bob's last message came after alice's last send");
      const rows = await db.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM messages WHERE conversation_id = $1', [conv.id]);
      assert.equal(rows[0]?.n, 11, 'committed to PostgreSQL');
    } finally {
      await Promise.all(devices.map((d) => d.client.close()));
      await node.close();
    }
  });

  test('two nodes on one database: history and an idempotent resend through the other node', async () => {
    const nodes: TestNode[] = [await start(), await start()];
    try {
      // Each test node has its own token secret: users log in again on node 2 (which reads the
      // accounts node 1 created from the shared database).
      const [n1, n2] = nodes as [TestNode, TestNode];
      const alice = await register(n1.url, uname('pgx'));
      const bob = await register(n1.url, uname('pgy'));
      const a1 = new ConfabApi({ baseUrl: n1.url });
      a1.useSession(alice);
      const conv = await a1.direct(bob.user.username);
      const first = await a1.sendMessage(conv.id, 'hello from node 1', 'cross-1');
      const b2 = new ConfabApi({ baseUrl: n2.url });
      await b2.login(bob.user.username, 'correct horse');
      const page = await b2.history(conv.id);
      assert.deepEqual(page.messages.map((m) => m.messageId), [first.message.messageId], 'node 2 reads what node 1 committed');
      const a2 = new ConfabApi({ baseUrl: n2.url });
      await a2.login(alice.user.username, 'correct horse');
      const again = await a2.sendMessage(conv.id, 'hello from node 1', 'cross-1');
      assert.equal(again.duplicate, true, 'the resend through node 2 is recognised');
      assert.equal(again.message.seq, first.message.seq);
      const next = await a2.sendMessage(conv.id, 'and from node 2', 'cross-2');
      assert.equal(next.message.seq, first.message.seq + 1, 'both nodes allocate from one sequence');
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
    }
  });
});
