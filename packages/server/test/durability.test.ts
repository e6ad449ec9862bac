// Durability: SIGKILL the server while clients send; restart on the same data dir; every acked
// message is there, seq has no gap. Runs `confab serve` as a child process (needs `npx tsc -b`).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { WebSocket } from 'ws';
import type { Message, Session } from '@confab/protocol';
import { ConfabApi, ConfabClient } from '@confab/sdk';
import { http, register, spawnNode, tempDir, type ChildNode } from './helpers.js';

const FAST = ['--sends-per-second', '100000', '--send-burst', '100000', '--user-sends-per-second', '100000', '--user-send-burst', '100000'];

const children = new Set<ChildNode>();
const dirs: string[] = [];
const clients = new Set<ConfabClient>();

after(async () => {
  await Promise.all([...clients].map((c) => c.close()));
  for (const c of children) {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await c.exited;
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(dataDir: string): Promise<ChildNode> {
  const n = await spawnNode(dataDir, FAST);
  children.add(n);
  return n;
}

async function kill9(n: ChildNode): Promise<void> {
  assert.equal(n.child.kill('SIGKILL'), true, 'the signal was delivered');
  await n.exited;
  assert.equal(n.child.signalCode, 'SIGKILL');
  children.delete(n);
}

/** The whole log of a conversation over REST, paging forward with `after=` (bounded). */
async function readAll(url: string, token: string, cid: string): Promise<Message[]> {
  const all: Message[] = [];
  let after = 0;
  for (let page = 0; page < 10_000; page++) {
    const r = await http(url, 'GET', `/v1/conversations/${cid}/messages?after=${after}&limit=200`, undefined, token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const msgs = r.body.messages as Message[];
    all.push(...msgs);
    if (!r.body.hasMore) return all;
    assert.ok(msgs.length > 0, 'hasMore with an empty page');
    after = msgs[msgs.length - 1]!.seq;
  }
  throw new Error('history did not end');
}

function assertGapFree(log: Message[]): void {
  log.forEach((m, i) => assert.equal(m.seq, i + 1, `seq ${i + 1} expected, got ${m.seq}: a gap or a duplicate`));
}

interface Sent { clientId: string; text: string; user: number }

test('SIGKILL while 4 clients send: every acked message survives at its seq, seq has no gap, resends are exactly-once', { timeout: 60_000 }, async (t) => {
  const dataDir = tempDir('confab-durability-');
  dirs.push(dataDir);
  let node = await start(dataDir);
  const url = node.url;

  const sessions: Session[] = [];
  for (let i = 0; i < 4; i++) sessions.push(await register(url));
  const created = await http(url, 'POST', '/v1/conversations', { name: 'crash', members: sessions.slice(1).map((s) => s.user.username) }, sessions[0]!.accessToken);
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const cid = created.body.id as string;

  const sent = new Map<string, Sent>(); // clientId -> what was sent
  const acked = new Map<string, Message>(); // clientId -> the ack's entry
  const KILL_AFTER = 600;
  let killed = false;
  let killedAt = 0;
  let resolveKill!: () => void;
  const killedPromise = new Promise<void>((resolve) => { resolveKill = resolve; });

  const cs = sessions.map((s) => {
    const api = new ConfabApi({ baseUrl: url });
    api.useSession(s);
    const c = new ConfabClient({ url, WebSocket, getToken: ({ expired }) => api.accessToken(expired), reconnect: { minDelayMs: 50, maxDelayMs: 200 }, sendWindow: 64 });
    clients.add(c);
    return c;
  });
  await Promise.all(cs.map((c) => c.connect()));

  // Each client keeps its send window full until the kill; every ack is recorded as it arrives.
  const settled: Promise<unknown>[] = [];
  const pump = (user: number, c: ConfabClient) => {
    let n = 0;
    const next = () => {
      if (killed || n >= 5000) return;
      const clientId = `u${user}-${n}`;
      const text = `user ${user} message ${n} ${'x'.repeat(n % 50)}`;
      n++;
      sent.set(clientId, { clientId, text, user });
      const p = c.send(cid, text, { clientId }).then((m) => {
        acked.set(clientId, m);
        if (!killed && acked.size >= KILL_AFTER) {
          killed = true;
          killedAt = acked.size;
          node.child.kill('SIGKILL');
          resolveKill();
        }
        next();
      }, () => undefined /* the client was closed with this send unacked */);
      settled.push(p);
    };
    for (let i = 0; i < 64; i++) next();
  };
  cs.forEach((c, i) => pump(i, c));

  await killedPromise;
  await node.exited;
  children.delete(node);
  assert.equal(node.child.signalCode, 'SIGKILL');
  // Sends that were in flight stay queued in the SDK (it is reconnecting); close the clients
  // so they give up, and keep the acks that arrived before the socket died.
  await Promise.all(cs.map((c) => c.close()));
  await Promise.all(settled);
  assert.ok(killedAt >= KILL_AFTER);
  const unacked = [...sent.values()].filter((s) => !acked.has(s.clientId));
  assert.ok(unacked.length > 0, 'the kill happened mid-stream: some sends were still in flight');

  node = await start(dataDir);
  // The access tokens from before the crash still work: the token secret lives in the data dir.
  const token = sessions[0]!.accessToken;
  const log = await readAll(node.url, token, cid);

  // seq is exactly 1..N; every acked message is there at its seq, unchanged.
  assertGapFree(log);
  assert.ok(log.length >= acked.size, `${log.length} entries stored, ${acked.size} acked`);
  for (const [clientId, m] of acked) {
    const stored = log[m.seq - 1];
    assert.ok(stored, `acked seq ${m.seq} (${clientId}) is missing`);
    assert.equal(stored.messageId, m.messageId);
    assert.equal(stored.clientId, clientId);
    assert.equal(stored.text, sent.get(clientId)!.text);
    assert.equal(stored.sender, sessions[sent.get(clientId)!.user]!.user.id);
  }
  // Nothing that was never sent, and nothing twice.
  const seen = new Set<string>();
  for (const m of log) {
    const s = sent.get(m.clientId);
    assert.ok(s, `unknown entry ${m.clientId} at seq ${m.seq}`);
    assert.equal(m.text, s.text);
    assert.equal(m.sender, sessions[s.user]!.user.id);
    assert.ok(!seen.has(m.clientId), `${m.clientId} stored twice`);
    seen.add(m.clientId);
  }
  const n = log.length;
  // Per sender, the sends of one connection keep their order.
  for (let u = 0; u < 4; u++) {
    const order = log.filter((m) => m.sender === sessions[u]!.user.id).map((m) => Number(m.clientId.split('-')[1]));
    assert.deepEqual(order, [...order].sort((a, b) => a - b), `user ${u}'s messages out of order`);
  }

  // The clients resend their unacked sends with the same client ids: each ends exactly once.
  const tokens = sessions.map((s) => s.accessToken);
  const stored = new Map(log.map((m) => [m.clientId, m]));
  let fresh = 0;
  for (const s of unacked) {
    const r = await http(node.url, 'POST', `/v1/conversations/${cid}/messages`, { clientId: s.clientId, text: s.text }, tokens[s.user]);
    const before = stored.get(s.clientId);
    if (before) {
      assert.equal(r.status, 200, `${s.clientId} was committed before the kill: a resend is a duplicate`);
      assert.equal(r.body.duplicate, true);
      assert.equal(r.body.message.seq, before.seq);
      assert.equal(r.body.message.messageId, before.messageId);
    } else {
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.duplicate, false);
      fresh++;
      assert.equal(r.body.message.seq, n + fresh, 'seq continues after the restart without a gap');
    }
  }
  // A second resend of everything changes nothing.
  for (const s of unacked.slice(0, 20)) {
    const r = await http(node.url, 'POST', `/v1/conversations/${cid}/messages`, { clientId: s.clientId, text: s.text }, tokens[s.user]);
    assert.equal(r.status, 200);
    assert.equal(r.body.duplicate, true);
  }
  t.diagnostic(`sent ${sent.size}, acked ${acked.size}, stored after the crash ${n}, in flight at the kill ${unacked.length} (${unacked.length - fresh} of them committed)`);
  const final = await readAll(node.url, token, cid);
  assertGapFree(final);
  assert.equal(final.length, sent.size, 'every send is stored exactly once');
  const counts = new Map<string, number>();
  for (const m of final) counts.set(m.clientId, (counts.get(m.clientId) ?? 0) + 1);
  for (const s of sent.values()) assert.equal(counts.get(s.clientId), 1, `${s.clientId} stored ${counts.get(s.clientId) ?? 0} times`);

  node.child.kill('SIGTERM');
  assert.equal(await node.exited, 0);
  children.delete(node);
});

test('SIGKILL and restart twice in a row: the node starts, accepts sends, seq continues from N+1', { timeout: 60_000 }, async (t) => {
  const dataDir = tempDir('confab-durability-');
  dirs.push(dataDir);
  let node = await start(dataDir);
  const alice = await register(node.url);
  const bob = await register(node.url);
  const direct = await http(node.url, 'POST', '/v1/conversations/direct', { username: bob.user.username }, alice.accessToken);
  assert.equal(direct.status, 200, JSON.stringify(direct.body));
  const cid = direct.body.id as string;
  const send = (url: string, clientId: string, token = alice.accessToken) =>
    http(url, 'POST', `/v1/conversations/${cid}/messages`, { clientId, text: `text ${clientId}` }, token);

  // Round 1: 20 acked sends, then a burst that is cut by the kill.
  for (let i = 0; i < 20; i++) assert.equal((await send(node.url, `a${i}`)).status, 201);
  const burst = Array.from({ length: 200 }, (_, i) => send(node.url, `b${i}`).then((r) => r, () => undefined));
  // Kill as soon as the first of the burst is acked, while the rest are in flight.
  await Promise.any(burst.map((p) => p.then((r) => (r?.status === 201 ? r : Promise.reject(new Error('not acked'))))));
  await kill9(node);
  const burstAcked = (await Promise.all(burst)).filter((r) => r?.status === 201).length;

  // Restart, and kill again at once: a node killed right after recovery still recovers.
  node = await start(dataDir);
  await kill9(node);
  node = await start(dataDir);

  const log = await readAll(node.url, alice.accessToken, cid);
  assertGapFree(log);
  assert.ok(log.length >= 20 + burstAcked, `${log.length} stored, ${20 + burstAcked} acked`);
  assert.deepEqual(log.slice(0, 20).map((m) => m.clientId), Array.from({ length: 20 }, (_, i) => `a${i}`));
  const n = log.length;
  t.diagnostic(`burst: ${burstAcked} acked before the kill, ${n - 20} stored`);

  // Sends continue from N+1, over REST and over the WebSocket, from either member.
  const r1 = await send(node.url, 'after-1');
  assert.equal(r1.status, 201, JSON.stringify(r1.body));
  assert.equal(r1.body.message.seq, n + 1);
  const api = new ConfabApi({ baseUrl: node.url });
  api.useSession(bob);
  const client = new ConfabClient({ url: node.url, WebSocket, getToken: ({ expired }) => api.accessToken(expired), reconnect: { minDelayMs: 50, maxDelayMs: 200 } });
  clients.add(client);
  await client.connect();
  const m2 = await client.send(cid, 'after 2 over ws', { clientId: 'after-2' });
  assert.equal(m2.seq, n + 2);
  await client.close();

  // Round 3: kill with the new entries, restart, everything is still there and seq goes on.
  await kill9(node);
  node = await start(dataDir);
  const log2 = await readAll(node.url, bob.accessToken, cid);
  assertGapFree(log2);
  assert.equal(log2.length, n + 2);
  assert.equal(log2[n]!.clientId, 'after-1');
  assert.equal(log2[n + 1]!.clientId, 'after-2');
  const r3 = await send(node.url, 'after-3', bob.accessToken);
  assert.equal(r3.status, 201);
  assert.equal(r3.body.message.seq, n + 3);
  // The resend of a message from before all the kills is still recognised.
  const dup = await send(node.url, 'a0');
  assert.equal(dup.status, 200);
  assert.equal(dup.body.duplicate, true);
  assert.equal(dup.body.message.seq, 1);

  node.child.kill('SIGTERM');
  assert.equal(await node.exited, 0);
  children.delete(node);
});
