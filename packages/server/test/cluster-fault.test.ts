// Issue "cluster mode", faults, and issue "production hardening", test 1: three nodes as child
// processes (one PostgreSQL schema, one Redis prefix), each client behind a balancer that prefers
// its home node. One node is killed with SIGKILL while everyone sends: its clients reconnect to
// the others (the SDK resends unacked sends with their client ids) and the fault checker finds
// nothing lost, doubled, out of order or made up; every client is connected again within 10 s.
//
// CI runs 12 clients (2 groups of 6) x 60 sends. The long version is the same file with more
// clients: `FAULT_CLIENTS=1000 FAULT_SENDS=20 node --import tsx --test packages/server/test/cluster-fault.test.ts`
// (figures in docs/reliability.md).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Message } from '@confab/protocol';
import { FaultChecker } from './checker.js';
import { device, seqs, type Device } from './clients.js';
import { clusterEnv, hostPort, nodeEnv, startBalancer, type Balancer } from './cluster-kit.js';
import { register, spawnNode, tempDir, uname, type ChildNode } from './helpers.js';
import { postgresSuite } from './pg.js';
import { dropPrefix, redisAvailable, sleep, until } from './redis-env.js';

const GROUP = 6;
const CLIENTS = Math.max(GROUP, Math.ceil(Number(process.env.FAULT_CLIENTS ?? 12) / GROUP) * GROUP);
const EACH = Number(process.env.FAULT_SENDS ?? 60);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
/** Runs `fn` over `items`, at most `n` at a time. */
async function pool<T, R>(items: T[], n: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(range(1, Math.min(n, items.length)).map(async () => {
    while (next < items.length) { const i = next++; out[i] = await fn(items[i]!, i); }
  }));
  return out;
}

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

    test(`kill -9 one of 3 nodes while ${CLIENTS} clients send: nothing lost, doubled, reordered or made up; all back within 10 s`, { timeout: 600_000 }, async (t) => {
      kids.push(...(await Promise.all(range(0, 2).map((i) => spawnNode(dirs[i]!, [], nodeEnv(env, `k${i}`))))));
      const backends = kids.map((k) => hostPort(k.url));
      // Balancer i sends new connections to node i, or to the next one that accepts.
      balancers.push(...(await Promise.all(range(0, 2).map((i) => startBalancer(() => range(0, 2).map((j) => backends[(i + j) % 3]!))))));
      const users = await pool(range(0, CLIENTS - 1), 8, (i) => register(balancers[i % 3]!.url, uname(`f${i}`)));
      const checker = new FaultChecker();
      devices.push(...(await pool(users, 50, async (u, i) => {
        const d = await device(balancers[i % 3]!.url, u);
        d.client.on('message', (m) => checker.seen(`d${i}`, m));
        return d;
      })));
      assert.deepEqual(devices.map((d) => d.client.welcome?.nodeId), range(0, CLIENTS - 1).map((i) => `k${i % 3}`));
      const groups = await pool(range(0, CLIENTS / GROUP - 1), 8, (g) => devices[g * GROUP]!.api.createGroup(`faults ${g}`, users.slice(g * GROUP + 1, (g + 1) * GROUP).map((u) => u.user.username)));
      const groupOf = (i: number) => groups[Math.floor(i / GROUP)]!;
      // Follow each group from seq 0, so a device's start does not depend on which node's entry reaches it first.
      await pool(devices, 50, (d, i) => d.client.sync(groupOf(i).id, 0));

      let acked = 0;
      const sending = devices.map(async (d, k) => {
        const acks: Promise<Message>[] = [];
        for (let i = 0; i < EACH; i++) {
          acks.push(d.client.send(groupOf(k).id, `${k}:${i}`).then((m) => { acked++; checker.acked(`d${k}`, m); return m; }));
          if (i % 5 === 4) await sleep(40 + Math.random() * 20);
        }
        return Promise.all(acks);
      });
      const total = CLIENTS * EACH;
      await until(() => acked >= total / 3, 120_000, 'a third of the sends acked');
      const victims = devices.filter((_, i) => i % 3 === 0);
      const inFlight = victims.reduce((n, d) => n + d.client.pendingSends, 0);
      const killedAt = Date.now();
      kids[0]!.child.kill('SIGKILL');
      await kids[0]!.exited;
      const ackedAtKill = acked;
      t.diagnostic(`killed k0 with ${ackedAtKill}/${total} sends acked and ${inFlight} in flight on its ${victims.length} clients`);
      assert.ok(ackedAtKill < total, 'the node died while clients were still sending');
      await until(() => victims.every((d) => d.client.state === 'open' && d.client.welcome?.nodeId !== 'k0'), 10_000, 'every client of the killed node connected to another node within 10 s');
      t.diagnostic(`all ${victims.length} clients of k0 reconnected elsewhere ${Date.now() - killedAt} ms after the kill`);

      const results = await Promise.all(sending);
      for (const [k, list] of results.entries()) {
        const s = seqs(list);
        assert.ok(s.every((x, i) => i === 0 || x > s[i - 1]!), `sender ${k}: acked seqs increase in send order`);
      }
      // The truth: every group's log from the store.
      const log: Message[] = [];
      await pool(groups, 8, async (c, g) => {
        for (let after = 0; ;) {
          const page = await devices[g * GROUP + 1]!.api.history(c.id, { after, limit: 200 });
          if (page.messages.length === 0) break;
          log.push(...page.messages);
          after = page.messages.at(-1)!.seq;
        }
      });
      const followers = new Map(groups.map((c, g) => [c.id, range(g * GROUP, (g + 1) * GROUP - 1).map((i) => `d${i}`)]));
      await until(() => checker.check(log, followers).lost === 0, 30_000, 'every device to hold its group\'s log').catch(() => undefined);
      const report = checker.check(log, followers);
      t.diagnostic(`checker: acked ${report.acked}, log ${report.logEntries}, lost ${report.lost}, duplicated ${report.duplicated}, out of order ${report.outOfOrder}, phantom ${report.phantom}`);
      assert.deepEqual({ lost: report.lost, duplicated: report.duplicated, outOfOrder: report.outOfOrder, phantom: report.phantom }, { lost: 0, duplicated: 0, outOfOrder: 0, phantom: 0 }, report.problems.join('\n'));
      assert.equal(report.acked, total, 'every send acked');
      assert.equal(report.logEntries, total, 'the store holds exactly the acked sends');
      for (const [g, c] of groups.entries()) {
        const view = devices[g * GROUP + 1]!.of(c.id);
        for (let k = g * GROUP; k < (g + 1) * GROUP; k++) {
          const mine = view.filter((m) => m.text.startsWith(`${k}:`)).map((m) => Number(m.text.split(':')[1]));
          assert.deepEqual(mine, range(0, EACH - 1), `sender ${k}: each message once, in send order`);
        }
      }
    });
  });
}
