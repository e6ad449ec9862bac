// Issue "cluster mode": three nodes in this process on one PostgreSQL schema and one Redis key
// prefix, clients spread over all three. The core's guarantees must hold across nodes: the same
// order everywhere (seq 1..N, no gap, no duplicate), idempotent resend against another node,
// offline catch-up on a different node than the one the device left.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Session } from '@confab/protocol';
import { ConfabApi, type ClientOptions } from '@confab/sdk';
import { device, login, seqs, type Device } from './clients.js';
import { clusterEnv, startClusterNode } from './cluster-kit.js';
import { register, uname, type TestNode } from './helpers.js';
import { postgresSuite } from './pg.js';
import { dropPrefix, redisAvailable } from './redis-env.js';

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * Devices follow the conversation from seq 0 (as an app does for a conversation it shows).
 * Without a cursor a device starts live at the first entry that reaches its node, and across
 * nodes that need not be the lowest one (see the report in docs/architecture.md, "Cluster").
 */
const tracked = (ds: readonly Device[], conversationId: string) => Promise.all(ds.map((d) => d.client.sync(conversationId, 0)));

if (await redisAvailable('cluster: 3 nodes')) {
  await postgresSuite('cluster: 3 nodes on one PostgreSQL and one Redis', (db) => {
    const env = clusterEnv(db.schemaUrl);
    const nodes: TestNode[] = [];
    const devices: Device[] = [];
    const url = (i: number) => nodes[i % 3]!.url;
    const dev = async (i: number, session: Session, o: Partial<ClientOptions> = {}) => {
      const d = await device(url(i), session, o);
      devices.push(d);
      assert.equal(d.client.welcome?.nodeId, `n${i % 3}`);
      return d;
    };

    before(async () => {
      nodes.push(...(await Promise.all([0, 1, 2].map((i) => startClusterNode(env, `n${i}`)))));
    });
    after(async () => {
      await Promise.all(devices.map((d) => d.client.close()));
      await Promise.all(nodes.map((n) => n.close()));
      await dropPrefix(env.redisKeyPrefix);
    });

    test('a group spread over 3 nodes: every device sees seq 1..N in the same order', async () => {
      const users = await Promise.all(range(0, 5).map((i) => register(url(i), uname(`g${i}`))));
      const group = await (await dev(0, users[0]!)).api.createGroup('spread', users.slice(1).map((u) => u.user.username));
      for (let i = 1; i < 6; i++) await dev(i, users[i]!);
      // A second device of user 0 on another node.
      await dev(2, await login(url(2), users[0]!.user.username));
      const members = devices.slice(-7);
      await tracked(members, group.id);
      const N = 60;
      for (let k = 0; k < N; k++) await members[k % members.length]!.client.send(group.id, `m${k}`);
      const views = await Promise.all(members.map((d) => d.waitFor(group.id, N)));
      for (const v of views) {
        assert.deepEqual(seqs(v), range(1, N), 'seq 1..N, no gap, no duplicate');
        assert.deepEqual(v.map((m) => m.messageId), views[0]!.map((m) => m.messageId), 'the same entries in the same order');
      }
      assert.deepEqual(views[0]!.map((m) => m.text), range(0, N - 1).map((k) => `m${k}`));
    });

    test('6 senders on 3 nodes x 100 messages into one group: 600 per member, gap-free, per-sender order kept', async () => {
      const SENDERS = 6;
      const EACH = 100;
      const users = await Promise.all(range(0, SENDERS - 1).map((i) => register(url(i), uname(`s${i}`))));
      const senders: Device[] = [];
      senders.push(await dev(0, users[0]!));
      const group = await senders[0]!.api.createGroup('busy', users.slice(1).map((u) => u.user.username));
      for (let i = 1; i < SENDERS; i++) senders.push(await dev(i, users[i]!));
      await tracked(senders, group.id);
      const acked = await Promise.all(senders.map((d, k) => Promise.all(range(0, EACH - 1).map((i) => d.client.send(group.id, `${k}:${i}`)))));
      for (const [k, list] of acked.entries()) {
        const s = seqs(list);
        assert.ok(s.every((x, i) => i === 0 || x > s[i - 1]!), `sender ${k}: acked seqs increase in send order`);
      }
      const total = SENDERS * EACH;
      const views = await Promise.all(senders.map((d) => d.waitFor(group.id, total, 60_000)));
      for (const v of views) {
        assert.deepEqual(seqs(v), range(1, total));
        assert.deepEqual(v.map((m) => m.messageId), views[0]!.map((m) => m.messageId));
        for (let k = 0; k < SENDERS; k++) {
          const mine = v.filter((m) => m.text.startsWith(`${k}:`)).map((m) => Number(m.text.split(':')[1]));
          assert.deepEqual(mine, range(0, EACH - 1), `sender ${k} in send order`);
        }
      }
    });

    test('a resend of the same client id against other nodes returns the original', async () => {
      const [a, b] = await Promise.all([register(url(0), uname('ia')), register(url(1), uname('ib'))]);
      const da = await dev(0, a);
      const db2 = await dev(1, b);
      const group = await da.api.createGroup('idem', [b.user.username]);
      await tracked([da, db2], group.id);
      const first = await da.client.send(group.id, 'once', { clientId: 'same-id' });
      await db2.client.send(group.id, 'reply');
      // The same client id over REST on node 1, then over another device's socket on node 2.
      const rest = new ConfabApi({ baseUrl: url(1) });
      rest.useSession(a);
      const again = await rest.sendMessage(group.id, 'twice', 'same-id');
      assert.equal(again.duplicate, true);
      assert.equal(again.message.seq, first.seq);
      assert.equal(again.message.text, 'once');
      const other = await dev(2, await login(url(2), a.user.username));
      const third = await other.client.send(group.id, 'thrice', { clientId: 'same-id' });
      assert.equal(third.seq, first.seq);
      assert.equal(third.messageId, first.messageId);
      const seen = await db2.waitFor(group.id, 2);
      assert.deepEqual(seen.map((m) => m.text), ['once', 'reply']);
      const history = await db2.api.history(group.id, { after: 0 });
      assert.deepEqual(history.messages.map((m) => m.text), ['once', 'reply'], 'one entry per client id');
    });

    test('offline on node 0, messages via nodes 1 and 2, back on node 2: exactly what it missed, then live', async () => {
      const [a, b, c] = await Promise.all([register(url(0), uname('oa')), register(url(1), uname('ob')), register(url(2), uname('oc'))]);
      const away = await device(url(0), a);
      const group = await away.api.createGroup('offline', [b.user.username, c.user.username]);
      const db1 = await dev(1, b);
      const dc2 = await dev(2, c);
      await db1.client.send(group.id, 'before');
      await away.waitFor(group.id, 1);
      await away.client.close();
      const cursors = { [group.id]: 1 };
      // 450 messages while it is away: more than two sync pages (MAX_PAGE_SIZE 200).
      const MISSED = 450;
      await Promise.all(range(1, MISSED).map((k) => (k % 2 ? db1 : dc2).client.send(group.id, `missed ${k}`)));
      const back = await dev(2, a, { cursors });
      const caught = await back.waitFor(group.id, MISSED, 30_000);
      assert.deepEqual(seqs(caught), range(2, MISSED + 1), 'exactly the missed entries, in order');
      await db1.client.send(group.id, 'live');
      const all = await back.waitFor(group.id, MISSED + 1);
      assert.deepEqual(seqs(all), range(2, MISSED + 2), 'then live, no gap, no duplicate');
      assert.equal(all.at(-1)!.text, 'live');
    });

    test('members changed through another node: the next entry reaches the new member set at once', async () => {
      // Node 0 delivers the first entry (and so knows the member list); node 2 then removes one
      // member and adds another. Node 0's next entry must go to the new set: the removed member
      // gets nothing more, the added one gets it live, though node 0 made neither change.
      const [a, b, c, d] = await Promise.all(['ma', 'mb', 'mc', 'md'].map((p, i) => register(url(i), uname(p))));
      const da = await dev(0, a!);
      const group = await da.api.createGroup('changing', [b!.user.username, c!.user.username]);
      const [db1, dc2, dd1] = [await dev(1, b!), await dev(2, c!), await dev(1, d!)];
      await tracked([da, db1, dc2], group.id);
      await da.client.send(group.id, 'first');
      await Promise.all([db1, dc2].map((x) => x.waitFor(group.id, 1)));
      const owner = new ConfabApi({ baseUrl: url(2) });
      owner.useSession(a!);
      const removed = new Promise<void>((resolve) => db1.client.on('conversation', (e) => { if (e.change === 'removed' && e.conversationId === group.id) resolve(); }));
      await owner.removeMember(group.id, b!.user.id);
      await owner.addMembers(group.id, [d!.user.username]);
      await da.client.send(group.id, 'second');
      await dc2.waitFor(group.id, 2);
      const got = await dd1.waitFor(group.id, 1);
      assert.ok(got.some((m) => m.text === 'second'), 'the added member got the entry live');
      await removed;
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(db1.of(group.id).map((m) => m.text), ['first'], 'the removed member got nothing after its removal');
    });
  });
}
