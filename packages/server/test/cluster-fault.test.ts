// Issue "cluster mode", faults: three nodes as child processes (one PostgreSQL schema, one Redis
// prefix), each client behind a balancer that prefers its home node. One node is killed with
// SIGKILL while everyone sends: its clients reconnect to the others (the SDK resends unacked
// sends with their client ids) and no acked message is lost or duplicated, order kept.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Message } from '@confab/protocol';
import { device, seqs, type Device } from './clients.js';
import { clusterEnv, hostPort, nodeEnv, startBalancer, type Balancer } from './cluster-kit.js';
import { register, spawnNode, tempDir, uname, type ChildNode } from './helpers.js';
import { postgresSuite } from './pg.js';
import { dropPrefix, redisAvailable, sleep, until } from './redis-env.js';

const SENDERS = 6;
const EACH = 120;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

if (await redisAvailable('cluster faults')) {
  await postgresSuite('cluster faults', (db) => {
    const env = clusterEnv(db.schemaUrl);
    const dirs = range(0, 2).map(() => tempDir());
    const kids: ChildNode[] = [];
    const balancers: Balancer[] = [];
    const devices: Device[] = [];
    after(async () => {
      await Promise.all(devices.map((d) => d.client.close()));
      await Promise.all(balancers.map((b) => b.close()));
      for (const k of kids) if (k.child.exitCode === null) k.child.kill('SIGTERM');
      await Promise.all(kids.map((k) => k.exited));
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      await dropPrefix(env.redisKeyPrefix);
    });

    test('kill -9 one of 3 nodes while 6 clients send: no acked message lost or duplicated, order kept', async (t) => {
      kids.push(...(await Promise.all(range(0, 2).map((i) => spawnNode(dirs[i]!, [], nodeEnv(env, `k${i}`))))));
      const backends = kids.map((k) => hostPort(k.url));
      // Balancer i sends new connections to node i, or to the next one that accepts.
      balancers.push(...(await Promise.all(range(0, 2).map((i) => startBalancer(() => range(0, 2).map((j) => backends[(i + j) % 3]!))))));
      const users = await Promise.all(range(0, SENDERS - 1).map((i) => register(balancers[i % 3]!.url, uname(`f${i}`))));
      for (let i = 0; i < SENDERS; i++) devices.push(await device(balancers[i % 3]!.url, users[i]!));
      assert.deepEqual(devices.map((d) => d.client.welcome?.nodeId), range(0, SENDERS - 1).map((i) => `k${i % 3}`));
      const group = await devices[0]!.api.createGroup('faults', users.slice(1).map((u) => u.user.username));
      // Follow the group from seq 0, so a device's start does not depend on which node's entry reaches it first.
      await Promise.all(devices.map((d) => d.client.sync(group.id, 0)));

      let acked = 0;
      const sending = devices.map(async (d, k) => {
        const acks: Promise<Message>[] = [];
        for (let i = 0; i < EACH; i++) {
          acks.push(d.client.send(group.id, `${k}:${i}`).then((m) => { acked++; return m; }));
          if (i % 5 === 4) await sleep(40);
        }
        return Promise.all(acks);
      });
      const total = SENDERS * EACH;
      await until(() => acked >= total / 3, 30_000, 'a third of the sends acked');
      const inFlight = devices.filter((_, i) => i % 3 === 0).reduce((n, d) => n + d.client.pendingSends, 0);
      kids[0]!.child.kill('SIGKILL');
      await kids[0]!.exited;
      const ackedAtKill = acked;
      t.diagnostic(`killed k0 with ${ackedAtKill}/${total} sends acked and ${inFlight} in flight on its clients`);
      assert.ok(ackedAtKill < total, 'the node died while clients were still sending');

      const results = await Promise.all(sending);
      for (const [k, list] of results.entries()) {
        const s = seqs(list);
        assert.ok(s.every((x, i) => i === 0 || x > s[i - 1]!), `sender ${k}: acked seqs increase in send order`);
      }
      const ackedSeqs = results.flat().map((m) => m.seq).sort((a, b) => a - b);
      assert.deepEqual(ackedSeqs, range(1, total), 'every send acked once, with its own seq: nothing lost, nothing doubled');

      const views = await Promise.all(devices.map((d) => d.waitFor(group.id, total, 30_000))).catch((err: Error) => {
        const report = devices.map((d, i) => {
          const have = new Set(seqs(d.of(group.id)));
          const missing = range(1, total).filter((s) => !have.has(s));
          return `device ${i} on ${d.client.welcome?.nodeId}: ${have.size} seen, missing ${missing.length ? `${missing[0]}..${missing.at(-1)} (${missing.length})` : 'none'}`;
        });
        throw new Error(`${err.message}\n${report.join('\n')}`);
      });
      for (const v of views) {
        assert.deepEqual(seqs(v), range(1, total), 'every device: seq 1..N, no gap, no duplicate');
        assert.deepEqual(v.map((m) => m.messageId), views[0]!.map((m) => m.messageId), 'the same order everywhere');
        for (let k = 0; k < SENDERS; k++) {
          const mine = v.filter((m) => m.text.startsWith(`${k}:`)).map((m) => Number(m.text.split(':')[1]));
          assert.deepEqual(mine, range(0, EACH - 1), `sender ${k}: each message once, in send order`);
        }
      }
      // The killed node's clients now live on the survivors.
      for (let i = 0; i < SENDERS; i += 3) assert.notEqual(devices[i]!.client.welcome?.nodeId, 'k0');
      const page = await devices[1]!.api.history(group.id, { before: total + 1, limit: 1 });
      assert.equal(page.messages[0]?.seq, total, 'the store holds exactly N entries');
    });
  });
}
