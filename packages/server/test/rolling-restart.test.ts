// Issue "production hardening", test 2 (short version): a rolling restart of a 3-node cluster
// while clients send. Each node in turn is taken out of the balancer, sent SIGTERM (it drains:
// writes refused, commits in flight finished, clients closed with 4101) and started again on the
// same port; the next one goes once it is ready. The fault checker then compares what clients
// were acked and saw with the store's log: nothing lost, doubled, out of order or made up, and
// no client reconnected more than once per restart.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { CLOSE_CODES, type Message } from '@confab/protocol';
import { FaultChecker } from './checker.js';
import { device, type Device } from './clients.js';
import { clusterEnv, hostPort, nodeEnv, startBalancer, type Balancer } from './cluster-kit.js';
import { http, register, spawnNode, tempDir, uname, type ChildNode } from './helpers.js';
import { postgresSuite } from './pg.js';
import { dropPrefix, redisAvailable, sleep, until } from './redis-env.js';

const GROUPS = 4;
const PER_GROUP = 6;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

if (await redisAvailable('rolling restart')) {
  await postgresSuite('rolling restart', (db) => {
    const env = clusterEnv(db.schemaUrl);
    const dirs = range(0, 2).map(() => tempDir());
    const kids: ChildNode[] = [];
    let balancer: Balancer | undefined;
    const devices: Device[] = [];
    after(async () => {
      await Promise.all(devices.map((d) => d.client.close()));
      await balancer?.close();
      for (const k of kids) if (k.child.exitCode === null) k.child.kill('SIGTERM');
      await Promise.all(kids.map((k) => k.exited));
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      await dropPrefix(env.redisKeyPrefix);
    });

    test(`rolling restart of 3 nodes with drain while ${GROUPS * PER_GROUP} clients send: 0 lost, 0 doubled, at most one reconnect per client per restart`, async (t) => {
      const start = (i: number, port = 0) => spawnNode(dirs[i]!, ['--port', String(port), '--shutdown-timeout-ms', '10000'], nodeEnv(env, `roll${i}`));
      kids.push(...(await Promise.all(range(0, 2).map((i) => start(i)))));
      const backends = kids.map((k) => hostPort(k.url));
      // A balancer with readiness checks: nodes being restarted are out; new connections rotate.
      const out = new Set<number>();
      let turn = 0;
      balancer = await startBalancer(() => {
        turn++;
        return range(0, 2).map((j) => (turn + j) % 3).filter((i) => !out.has(i)).map((i) => backends[i]!);
      });
      const url = balancer.url;

      const users = await Promise.all(range(1, GROUPS * PER_GROUP).map((i) => register(url, uname(`rr${i}`))));
      const checker = new FaultChecker();
      const opens: number[] = [];
      const goingAway: number[] = [];
      for (const [i, u] of users.entries()) {
        const d = await device(url, u);
        opens.push(1);
        goingAway.push(0);
        d.client.on('state', (s) => {
          if (s.state === 'open') opens[i]!++;
          if (s.code === CLOSE_CODES.going_away.code) goingAway[i]!++;
        });
        d.client.on('message', (m) => checker.seen(`d${i}`, m));
        devices.push(d);
      }
      const groups = await Promise.all(range(0, GROUPS - 1).map((g) => devices[g * PER_GROUP]!.api.createGroup(`roll ${g}`, users.slice(g * PER_GROUP + 1, (g + 1) * PER_GROUP).map((u) => u.user.username))));
      const groupOf = (i: number) => groups[Math.floor(i / PER_GROUP)]!;
      // Everyone follows their group from seq 0, so each device must end with the whole log.
      await Promise.all(devices.map((d, i) => d.client.sync(groupOf(i).id, 0)));

      let sending = true;
      const loops = devices.map(async (d, i) => {
        for (let n = 0; sending; n++) {
          checker.acked(`d${i}`, await d.client.send(groupOf(i).id, `${i}:${n}`));
          await sleep(100 + Math.random() * 100);
        }
      });
      await sleep(1000);

      const perRestart: number[][] = [];
      for (const i of range(0, 2)) {
        const before = [...opens];
        out.add(i);
        kids[i]!.child.kill('SIGTERM');
        const code = await kids[i]!.exited;
        assert.equal(code, 0, `node ${i} drained and exited cleanly`);
        kids[i] = await start(i, Number(backends[i]!.split(':')[1]));
        await until(async () => (await http(kids[i]!.url, 'GET', '/readyz')).status === 200, 20_000, `node ${i} ready again`);
        out.delete(i);
        // Clients of the stopped node are back on another one before the next restart.
        await until(() => devices.every((d) => d.client.state === 'open'), 20_000, 'every client connected again');
        await sleep(500);
        perRestart.push(opens.map((o, k) => o - before[k]!));
      }
      await sleep(500);
      sending = false;
      await Promise.all(loops);

      // The truth: each group's log from the store, through any node.
      const log: Message[] = [];
      for (const [g, conv] of groups.entries()) {
        for (let after = 0; ;) {
          const page = await devices[g * PER_GROUP]!.api.history(conv.id, { after, limit: 200 });
          if (page.messages.length === 0) break;
          log.push(...page.messages);
          after = page.messages.at(-1)!.seq;
        }
      }
      const followers = new Map(groups.map((c, g) => [c.id, range(g * PER_GROUP, (g + 1) * PER_GROUP - 1).map((i) => `d${i}`)]));
      await until(() => checker.check(log, followers).lost === 0, 20_000, 'every device to hold its whole group log').catch(() => undefined);
      const report = checker.check(log, followers);
      t.diagnostic(`acked ${report.acked}, log ${report.logEntries}; reconnects per restart: ${perRestart.map((r) => r.reduce((a, b) => a + b, 0)).join(', ')}; 4101 closes: ${goingAway.reduce((a, b) => a + b, 0)}`);
      assert.deepEqual({ lost: report.lost, duplicated: report.duplicated, outOfOrder: report.outOfOrder, phantom: report.phantom }, { lost: 0, duplicated: 0, outOfOrder: 0, phantom: 0 }, report.problems.join('\n'));
      assert.equal(report.acked, report.logEntries, 'the log is exactly the acked sends');
      for (const [r, counts] of perRestart.entries()) {
        assert.ok(counts.every((c) => c <= 1), `restart ${r}: no client reconnected twice (${counts.join(',')})`);
        assert.ok(counts.some((c) => c === 1), `restart ${r}: the node had clients, and they moved`);
      }
      assert.equal(goingAway.reduce((a, b) => a + b, 0), perRestart.flat().reduce((a, b) => a + b, 0), 'every reconnect followed a 4101 going_away');
    });
  });
}
