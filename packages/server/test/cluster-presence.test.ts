// Issue "cluster mode", presence across nodes: a watcher on one node sees a user whose devices
// are on other nodes, online while any device anywhere is, offline with last seen when all are
// gone, and offline after the liveness TTL when the node holding them is killed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PresenceEntry, ServerFrame, Session } from '@confab/protocol';
import { clusterEnv, nodeEnv, startClusterNode } from './cluster-kit.js';
import { http, register, spawnNode, tempDir, uname, type ChildNode, type TestNode } from './helpers.js';
import { postgresSuite } from './pg.js';
import { dropPrefix, redisAvailable, sleep } from './redis-env.js';
import { rawSocket, type RawSocket } from './ws-raw.js';

const TTL_MS = 2000;
const FAST = { NODE_TTL_MS: String(TTL_MS), PRESENCE_INTERVAL_MS: '50' };

/** Every wait of this file is bounded: a stuck step fails with its name instead of hanging the run. */
const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
};

if (await redisAvailable('cluster presence')) {
  await postgresSuite('cluster: presence across nodes', (db) => {
    const env = clusterEnv(db.schemaUrl);
    const nodes: TestNode[] = [];
    const kids: ChildNode[] = [];
    const sockets: RawSocket[] = [];

    before(async () => {
      nodes.push(...(await within(Promise.all([0, 1, 2].map((i) => startClusterNode(env, `p${i}`, FAST))), 20_000, 'starting 3 nodes')));
    });
    after(async () => {
      for (const s of sockets) s.ws.close();
      for (const k of kids) if (k.child.exitCode === null) k.child.kill('SIGKILL');
      await within(Promise.all(nodes.map((n) => n.close())), 20_000, 'closing the nodes');
      await within(dropPrefix(env.redisKeyPrefix), 10_000, 'dropping the Redis keys');
    });

    const connect = async (url: string, session: Session) => {
      const s = await within(rawSocket(url), 10_000, `connecting to ${url}`);
      sockets.push(s);
      await s.hello(session.accessToken);
      return s;
    };
    const watch = async (s: RawSocket, ids: string[]) => {
      const id = `w${Math.random()}`;
      s.send({ type: 'presence.watch', id, userIds: ids });
      return s.next<Extract<ServerFrame, { type: 'presence' }>>((f) => f.type === 'presence' && f.id === id);
    };
    const nextPresence = (s: RawSocket, userId: string, status: string, timeoutMs = 5000) =>
      s.next((f) => f.type === 'presence' && !f.id && f.users.some((u) => u.userId === userId && u.status === status), timeoutMs).then(
        (f) => (f.type === 'presence' ? f.users.find((u) => u.userId === userId)! : assert.fail()));
    const updates = (s: RawSocket, userId: string): PresenceEntry[] =>
      s.frames.flatMap((f) => (f.type === 'presence' && !f.id ? f.users.filter((u) => u.userId === userId) : []));
    const pair = async () => {
      const [u, w] = await within(Promise.all([register(nodes[1]!.url, uname('cu')), register(nodes[0]!.url, uname('cw'))]), 15_000, 'register');
      await http(nodes[0]!.url, 'POST', '/v1/conversations/direct', { username: w.user.username }, u.accessToken, 10_000);
      return { u, w, watcher: await connect(nodes[0]!.url, w) };
    };

    test('watcher on node 0, devices on nodes 1 and 2: online at the first, online until both are gone, then offline with last seen', async () => {
      const { u, w, watcher } = await pair();
      assert.deepEqual((await watch(watcher, [u.user.id])).users, [{ userId: u.user.id, status: 'offline', lastSeen: null }]);
      const d1 = await connect(nodes[1]!.url, u);
      assert.equal((await nextPresence(watcher, u.user.id, 'online')).lastSeen, null);
      const d2 = await connect(nodes[2]!.url, u);
      // Away on one node only: still online (the other node's device is in the foreground).
      d1.send({ type: 'presence.set', status: 'away' });
      await sleep(300);
      d1.ws.close();
      await sleep(500);
      assert.deepEqual(updates(watcher, u.user.id).map((e) => e.status), ['online'], 'stays online while a device is on node 2');
      // A watch answered now (another node's state, read from the directory) says the same.
      const again = await connect(nodes[1]!.url, await within(register(nodes[1]!.url, uname('x')), 10_000, 'register'));
      assert.deepEqual((await watch(again, [u.user.id])).denied, [u.user.id], 'strangers still get nothing');
      const closedAt = Date.now();
      d2.ws.close();
      const off = await nextPresence(watcher, u.user.id, 'offline');
      assert.ok(Date.now() - closedAt < 1500, `offline at once (${Date.now() - closedAt} ms)`);
      assert.ok(off.lastSeen !== null && Math.abs(off.lastSeen - closedAt) < 1500, 'last seen is set');
      // Over REST on yet another node: offline, and the stored last seen.
      await sleep(400); // the batched last-seen write
      const rest = await http(nodes[2]!.url, 'GET', `/v1/presence?users=${u.user.id}`, undefined, w.accessToken, 10_000);
      assert.equal(rest.body.users[0].status, 'offline');
      assert.ok(rest.body.users[0].lastSeen >= closedAt - 50, 'stored last seen');
    });

    test('away on every node is away; the watch answer reads the other nodes', async () => {
      const { u, w, watcher } = await pair();
      await watch(watcher, [u.user.id]);
      const d1 = await connect(nodes[1]!.url, u);
      const d2 = await connect(nodes[2]!.url, u);
      await nextPresence(watcher, u.user.id, 'online');
      d1.send({ type: 'presence.set', status: 'away' });
      d2.send({ type: 'presence.set', status: 'away' });
      await nextPresence(watcher, u.user.id, 'away');
      const fresh = await connect(nodes[0]!.url, w);
      assert.deepEqual((await watch(fresh, [u.user.id])).users, [{ userId: u.user.id, status: 'away', lastSeen: null }]);
      const rest = await http(nodes[0]!.url, 'GET', `/v1/presence?users=${u.user.id}`, undefined, w.accessToken, 10_000);
      assert.deepEqual(rest.body.users, [{ userId: u.user.id, status: 'away', lastSeen: null }]);
      d2.send({ type: 'presence.set', status: 'online' });
      await nextPresence(watcher, u.user.id, 'online');
      d1.ws.close();
      d2.ws.close();
      await nextPresence(watcher, u.user.id, 'offline');
    });

    test('a node killed without cleanup: its users go offline after the liveness TTL, with last seen', async () => {
      const { u, w, watcher } = await pair();
      await watch(watcher, [u.user.id]);
      // LOG_LEVEL stays info: spawnNode waits for the "listening" line (at 'warn' it never came,
      // and this test hung there).
      const kid = await spawnNode(tempDir(), [], { ...nodeEnv(env, 'pk'), ...FAST }, 20_000);
      kids.push(kid);
      await connect(kid.url, u);
      await nextPresence(watcher, u.user.id, 'online');
      const killedAt = Date.now();
      kid.child.kill('SIGKILL');
      await within(kid.exited, 5000, 'the killed node exiting');
      const off = await nextPresence(watcher, u.user.id, 'offline', TTL_MS * 4);
      const ms = Date.now() - killedAt;
      assert.ok(ms <= TTL_MS + TTL_MS / 3 + 1500, `offline ${ms} ms after the kill (TTL ${TTL_MS} ms)`);
      assert.ok(off.lastSeen !== null && off.lastSeen >= killedAt, 'last seen is set');
      // The node that noticed recorded it: REST on another node shows it too.
      await sleep(400);
      const rest = await http(nodes[2]!.url, 'GET', `/v1/presence?users=${u.user.id}`, undefined, w.accessToken, 10_000);
      assert.equal(rest.body.users[0].status, 'offline');
      assert.ok(rest.body.users[0].lastSeen >= killedAt, 'stored last seen');
    });
  });
}
