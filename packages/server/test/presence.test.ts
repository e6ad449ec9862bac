// Issue "receipts and presence", tests 4, 5 and 6: presence from connections and heartbeats,
// last seen and its privacy, no leaks to strangers, typing that is throttled and ephemeral.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PresenceEntry, ServerFrame, Session } from '@confab/protocol';
import { http, register, startNode, uname, type TestNode } from './helpers.js';
import { rawSocket, type RawSocket } from './ws-raw.js';

const HEARTBEAT = { heartbeatIntervalMs: 100, heartbeatTimeoutMs: 400, presenceIntervalMs: 50, typingIntervalMs: 300, typingTtlMs: 1000 };
let node: TestNode;
before(async () => { node = await startNode({ limits: HEARTBEAT }); });
after(async () => { await node.close(); });

const sockets: RawSocket[] = [];
after(() => { for (const s of sockets) s.ws.close(); });
async function connect(session: Session, opts: { autoPong?: boolean } = {}): Promise<RawSocket> {
  const s = await rawSocket(node.url, opts);
  sockets.push(s);
  await s.hello(session.accessToken);
  return s;
}
async function watch(s: RawSocket, ids: string[]) {
  const id = `w${Math.random()}`;
  s.send({ type: 'presence.watch', id, userIds: ids });
  return s.next<Extract<ServerFrame, { type: 'presence' }>>((f) => f.type === 'presence' && f.id === id);
}
const presenceOf = (s: RawSocket, userId: string): PresenceEntry[] =>
  s.frames.flatMap((f) => (f.type === 'presence' && !f.id ? f.users.filter((u) => u.userId === userId) : []));
const nextPresence = (s: RawSocket, userId: string, status: string, timeoutMs = 3000) =>
  s.next((f) => f.type === 'presence' && !f.id && f.users.some((u) => u.userId === userId && u.status === status), timeoutMs).then(
    (f) => (f.type === 'presence' ? f.users.find((u) => u.userId === userId)! : assert.fail()));

async function pair() {
  const [u, w] = await Promise.all([register(node.url, uname('pu')), register(node.url, uname('pw'))]);
  await http(node.url, 'POST', '/v1/conversations/direct', { username: w.user.username }, u.accessToken);
  const watcher = await connect(w);
  return { u, w, watcher };
}

describe('presence', () => {
  test('online on connect, offline at once on a clean close, with last seen', async () => {
    const { u, watcher } = await pair();
    const first = await watch(watcher, [u.user.id]);
    assert.deepEqual(first.users, [{ userId: u.user.id, status: 'offline', lastSeen: null }], 'never seen yet');
    const d = await connect(u);
    assert.equal((await nextPresence(watcher, u.user.id, 'online')).lastSeen, null);
    const closedAt = Date.now();
    d.ws.close();
    const off = await nextPresence(watcher, u.user.id, 'offline');
    assert.ok(Date.now() - closedAt < 1000, 'at once (within the batching interval)');
    assert.ok(off.lastSeen !== null && Math.abs(off.lastSeen - closedAt) < 1000, 'last seen is set');
    const rest = (await http(node.url, 'GET', `/v1/presence?users=${u.user.id}`, undefined, (await register(node.url)).accessToken)).body;
    assert.deepEqual(rest.users, [], 'strangers get nothing over REST either');
  });

  test('a client that stops answering pings goes offline within the heartbeat timeout', async () => {
    const { u, watcher } = await pair();
    await watch(watcher, [u.user.id]);
    const silent = await connect(u, { autoPong: false });
    await nextPresence(watcher, u.user.id, 'online');
    const t0 = Date.now();
    const closed = silent.closed;
    await nextPresence(watcher, u.user.id, 'offline', 3000);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < HEARTBEAT.heartbeatTimeoutMs + 2 * HEARTBEAT.heartbeatIntervalMs + 300, `offline after ${elapsed} ms`);
    assert.equal((await closed).code, 1006, 'the server dropped the silent connection');
  });

  test('a user with two devices stays online until both are gone; away when all are away', async () => {
    const { u, watcher } = await pair();
    await watch(watcher, [u.user.id]);
    const d1 = await connect(u);
    const d2 = await connect(u);
    await nextPresence(watcher, u.user.id, 'online');
    d1.send({ type: 'presence.set', status: 'away' });
    d2.send({ type: 'presence.set', status: 'away' });
    await nextPresence(watcher, u.user.id, 'away');
    d2.send({ type: 'presence.set', status: 'online' });
    await nextPresence(watcher, u.user.id, 'online');
    d1.ws.close();
    await d1.closed;
    // d2 is still here: a ping round trip proves the server handled d1's close meanwhile.
    d2.send({ type: 'ping', id: 'p' });
    await d2.next((f) => f.type === 'pong');
    await new Promise((r) => setTimeout(r, HEARTBEAT.presenceIntervalMs * 3));
    assert.ok(!presenceOf(watcher, u.user.id).some((p) => p.status === 'offline'), 'still online with one device');
    d2.ws.close();
    await nextPresence(watcher, u.user.id, 'offline');
  });

  test('last seen can be hidden', async () => {
    const { u, w, watcher } = await pair();
    const d = await connect(u);
    d.ws.close();
    await d.closed;
    const r = await http(node.url, 'PATCH', '/v1/me', { hideLastSeen: true }, u.accessToken);
    assert.equal(r.body.hideLastSeen, true);
    const seen = await watch(watcher, [u.user.id]);
    assert.deepEqual(seen.users, [{ userId: u.user.id, status: 'offline', lastSeen: null }]);
    const rest = (await http(node.url, 'GET', `/v1/presence?users=${u.user.id}`, undefined, w.accessToken)).body;
    assert.deepEqual(rest, { users: [{ userId: u.user.id, status: 'offline', lastSeen: null }], denied: [] });
    await http(node.url, 'PATCH', '/v1/me', { hideLastSeen: false }, u.accessToken);
    const shown = (await http(node.url, 'GET', `/v1/presence?users=${u.user.id}`, undefined, w.accessToken)).body;
    assert.equal(typeof shown.users[0].lastSeen, 'number');
  });

  test('no presence for users who share no conversation', async () => {
    const { u, watcher } = await pair();
    const stranger = await register(node.url, uname('ps'));
    const s = await connect(stranger);
    const ans = await watch(s, [u.user.id]);
    assert.deepEqual(ans.users, []);
    assert.deepEqual(ans.denied, [u.user.id]);
    await watch(watcher, [u.user.id]);
    const d = await connect(u);
    await nextPresence(watcher, u.user.id, 'online');
    d.ws.close();
    await nextPresence(watcher, u.user.id, 'offline');
    assert.equal(s.frames.filter((f) => f.type === 'presence' && !f.id).length, 0, 'the stranger heard nothing');
    const rest = (await http(node.url, 'GET', `/v1/presence?users=${u.user.id}`, undefined, stranger.accessToken)).body;
    assert.deepEqual(rest, { users: [], denied: [u.user.id] });
  });
});

describe('typing', () => {
  test('only members hear it; it carries its expiry; a flood is throttled; nothing is stored', async () => {
    const [a, b, x] = await Promise.all([register(node.url, uname('ta')), register(node.url, uname('tb')), register(node.url, uname('tx'))]);
    const conv = (await http(node.url, 'POST', '/v1/conversations/direct', { username: b.user.username }, a.accessToken)).body;
    const sa = await connect(a);
    const sb = await connect(b);
    const sx = await connect(x);
    const a2 = await connect(a); // the typer's other device hears nothing of its own typing
    for (let i = 0; i < 50; i++) sa.send({ type: 'typing', conversationId: conv.id });
    const first = await sb.next((f) => f.type === 'typing');
    assert.deepEqual(first, { type: 'typing', conversationId: conv.id, userId: a.user.id, username: a.user.username, typing: true, expiresInMs: HEARTBEAT.typingTtlMs });
    sa.send({ type: 'typing', conversationId: conv.id, typing: false });
    await sb.next((f) => f.type === 'typing' && !f.typing);
    const forwarded = sb.frames.filter((f) => f.type === 'typing' && f.typing).length;
    assert.equal(forwarded, 1, `a flood of 50 became ${forwarded}`);
    // After the interval, typing goes through again.
    await new Promise((r) => setTimeout(r, HEARTBEAT.typingIntervalMs + 50));
    sa.send({ type: 'typing', conversationId: conv.id });
    await sb.next((f) => f.type === 'typing' && f.typing);
    // A stranger typing into the conversation is refused; nobody hears it.
    sx.send({ type: 'typing', conversationId: conv.id });
    const err = await sx.next((f) => f.type === 'error');
    assert.equal(err.type === 'error' && err.code, 'forbidden');
    sa.send({ type: 'ping', id: 'sync' });
    await sa.next((f) => f.type === 'pong');
    assert.ok(!sb.frames.some((f) => f.type === 'typing' && f.userId === x.user.id));
    assert.ok(!sx.frames.some((f) => f.type === 'typing'));
    assert.ok(!a2.frames.some((f) => f.type === 'typing'));
    const hist = await http(node.url, 'GET', `/v1/conversations/${conv.id}/messages`, undefined, a.accessToken);
    assert.deepEqual(hist.body.messages, [], 'typing is never stored');
  });
});

test('typing through the SDK: shown, then gone by itself after its expiry', async () => {
  const { device } = await import('./clients.js');
  const [a, b] = await Promise.all([register(node.url, uname('sa')), register(node.url, uname('sb'))]);
  const conv = (await http(node.url, 'POST', '/v1/conversations/direct', { username: b.user.username }, a.accessToken)).body;
  const da = await device(node.url, a);
  const db = await device(node.url, b);
  try {
    const events: { typing: boolean; at: number }[] = [];
    const gone = new Promise<void>((resolve) => db.client.on('typing', (t) => {
      events.push({ typing: t.typing, at: Date.now() });
      if (!t.typing) resolve();
    }));
    assert.equal(da.client.typing(conv.id), true);
    await gone;
    assert.deepEqual(events.map((e) => e.typing), [true, false]);
    const shown = events[1]!.at - events[0]!.at;
    assert.ok(shown >= HEARTBEAT.typingTtlMs - 50 && shown < HEARTBEAT.typingTtlMs + 1000, `expired after ${shown} ms`);
    assert.deepEqual(db.client.typingUsers(conv.id), []);
  } finally {
    await da.client.close();
    await db.client.close();
  }
});
