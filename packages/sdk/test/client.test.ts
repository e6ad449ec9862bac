// ConfabClient against a scripted WebSocket server: handshake, resume from cursors, dedup and
// gap filling, the ordered outbox across reconnects, retries, close codes and requests.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import type { Message } from '@confab/protocol';
import { ConfabClient, ConfabError } from '../src/index.js';
import type { ClientOptions, StateChange } from '../src/index.js';
import { C1, C2, FakeServer, USER, msg } from './fake-server.js';
import type { FakeConnection, Received } from './fake-server.js';

async function setup(t: TestContext, options: Partial<ClientOptions> = {}) {
  const server = await FakeServer.start();
  const client = new ConfabClient({ url: server.url, token: 'tok', WebSocket, random: () => 0, heartbeatIntervalMs: 0, ...options });
  const states: StateChange[] = [];
  const messages: Message[] = [];
  client.on('state', (s) => states.push(s));
  client.on('message', (m) => messages.push(m));
  t.after(async () => {
    await client.close();
    await server.stop();
  });
  return { server, client, states, messages };
}

/** Connects and completes the handshake; returns the server side of the connection and the hello. */
async function open(server: FakeServer, client: ConfabClient): Promise<{ conn: FakeConnection; hello: Received }> {
  const welcomed = client.connect();
  const conn = await server.connection();
  const hello = await conn.accept();
  await welcomed;
  return { conn, hello };
}

const seqs = (ms: Message[]) => ms.map((m) => `${m.conversationId === C1 ? 'c1' : 'c2'}:${m.seq}`);

test('connect: hello carries version, token and cursors; welcome resolves connect', { timeout: 10_000 }, async (t) => {
  const { server, client, states } = await setup(t, { cursors: { [C1]: 5 } });
  const welcomed = client.connect();
  const conn = await server.connection();
  const hello = await conn.next();
  assert.deepEqual(hello, { type: 'hello', v: 1, token: 'tok', cursors: { [C1]: 5 } });
  conn.welcome();
  const welcome = await welcomed;
  assert.equal(welcome.userId, USER);
  assert.equal(client.state, 'open');
  assert.deepEqual(states.map((s) => s.state), ['connecting', 'open']);
  assert.equal(await client.connect(), welcome, 'connect() again resolves with the same welcome');
});

test('the URL becomes ws://host/v1/ws and getToken is called per connection', { timeout: 10_000 }, async (t) => {
  const contexts: boolean[] = [];
  const { server, client } = await setup(t, {
    token: undefined,
    getToken: ({ expired }) => { contexts.push(expired); return `tok${contexts.length}`; },
  });
  const { conn, hello } = await open(server, client);
  assert.equal(hello.token, 'tok1');
  conn.close(4002, 'token_expired');
  const second = await server.connection();
  assert.equal((await second.accept()).token, 'tok2');
  assert.deepEqual(contexts, [false, true]);
});

test('catch-up from hello cursors, duplicates dropped, gaps filled by sync, in order', { timeout: 10_000 }, async (t) => {
  const { server, client, messages } = await setup(t, { cursors: { [C1]: 5 } });
  const synced = client.once('synced');
  const { conn } = await open(server, client);
  conn.send({ type: 'sync.page', conversationId: C1, messages: [msg(C1, 6), msg(C1, 7)] });
  conn.send({ type: 'sync.done', conversationId: C1, seq: 7 });
  assert.deepEqual(await synced, { conversationId: C1, seq: 7 });

  conn.send({ type: 'message', message: msg(C1, 7) }); // duplicate
  conn.send({ type: 'message', message: msg(C1, 8) });
  conn.send({ type: 'message', message: msg(C1, 10) }); // gap: 9 missing
  const sync = await conn.nextOf('sync');
  assert.deepEqual({ ...sync, id: undefined }, { type: 'sync', id: undefined, conversationId: C1, after: 8 });
  assert.deepEqual(seqs(messages), ['c1:6', 'c1:7', 'c1:8'], 'the entry after the gap is held');

  const filled = client.once('synced');
  conn.send({ type: 'sync.page', conversationId: C1, messages: [msg(C1, 9), msg(C1, 10)] });
  conn.send({ type: 'sync.done', conversationId: C1, seq: 10, id: sync.id });
  assert.deepEqual(await filled, { conversationId: C1, seq: 10 });
  const eleventh = client.once('message', (m) => m.seq === 11);
  conn.send({ type: 'message', message: msg(C1, 10) }); // duplicate again
  conn.send({ type: 'message', message: msg(C1, 11) });
  await eleventh;
  assert.deepEqual(seqs(messages), ['c1:6', 'c1:7', 'c1:8', 'c1:9', 'c1:10', 'c1:11']);
  assert.deepEqual(client.cursors(), { [C1]: 11 });
});

test('reconnect resumes every tracked conversation, including ones learned live', { timeout: 10_000 }, async (t) => {
  const { server, client, states } = await setup(t, { cursors: { [C1]: 5 } });
  const { conn } = await open(server, client);
  const got = client.once('message', (m) => m.conversationId === C2);
  conn.send({ type: 'message', message: msg(C2, 41) });
  await got;
  conn.close(4101, 'going_away');
  const second = await server.connection();
  const hello = await second.accept();
  assert.deepEqual(hello.cursors, { [C1]: 5, [C2]: 41 });
  const reconnecting = states.find((s) => s.state === 'reconnecting');
  assert.deepEqual(reconnecting, { state: 'reconnecting', previous: 'open', code: 4101, reason: 'going_away', delayMs: 0 });
});

test('outbox: pipelined up to the window, in order, resent with the same client ids after a reconnect', { timeout: 10_000 }, async (t) => {
  const { server, client } = await setup(t, { sendWindow: 8 });
  const { conn } = await open(server, client);
  const texts = Array.from({ length: 20 }, (_, i) => `hello ${i}`);
  const sends = texts.map((text, i) => client.send(C1, text, { clientId: `cid-${i}` }));
  void client.ping().catch(() => undefined); // a barrier: frames sent before it arrive before it
  const first: Received[] = [];
  for (let f = await conn.next(); f.type !== 'ping'; f = await conn.next()) first.push(f);
  assert.deepEqual(first.map((f) => f.clientId), texts.slice(0, 8).map((_, i) => `cid-${i}`), 'only the window is in flight');
  assert.ok(first.every((f) => f.type === 'send' && f.conversationId === C1));

  // Ack three: three more go out. Then the connection dies with the rest unacked.
  for (let i = 0; i < 3; i++) conn.ack(first[i]!, msg(C1, i + 1, { text: texts[i]! }));
  const more = [await conn.nextOf('send'), await conn.nextOf('send'), await conn.nextOf('send')];
  assert.deepEqual(more.map((f) => f.clientId), ['cid-8', 'cid-9', 'cid-10']);
  assert.deepEqual((await Promise.all(sends.slice(0, 3))).map((m) => m.seq), [1, 2, 3]);
  conn.close(4101, 'going_away');

  const second = await server.connection();
  await second.accept();
  const resent: Received[] = [];
  for (let i = 3; i < 20; i++) {
    const f = await second.nextOf('send');
    resent.push(f);
    // The server had committed 3..5 before the drop: it answers them as duplicates.
    second.ack(f, msg(C1, i + 1, { text: f.text as string }), i < 6);
  }
  assert.deepEqual(resent.map((f) => f.clientId), texts.slice(3).map((_, i) => `cid-${i + 3}`), 'resent in the original order');
  const acked = await Promise.all(sends);
  assert.deepEqual(acked.map((m) => m.seq), texts.map((_, i) => i + 1));
  assert.deepEqual(acked.map((m) => m.text), texts);
  assert.equal(client.pendingSends, 0);
});

test('rate_limited: the same frames are resent in order after retryAfterMs', { timeout: 10_000 }, async (t) => {
  const { server, client } = await setup(t);
  const { conn } = await open(server, client);
  const a = client.send(C1, 'a', { clientId: 'ca' });
  const b = client.send(C1, 'b', { clientId: 'cb' });
  const fa = await conn.nextOf('send');
  const fb = await conn.nextOf('send');
  const limitedAt = Date.now();
  conn.send({ type: 'error', id: fa.id, code: 'rate_limited', message: 'slow down', retryAfterMs: 40 });
  conn.send({ type: 'error', id: fb.id, code: 'rate_limited', message: 'slow down', retryAfterMs: 40 });
  const again = [await conn.nextOf('send'), await conn.nextOf('send')];
  assert.ok(Date.now() - limitedAt >= 35, 'the client waited for retryAfterMs');
  assert.deepEqual(again.map((f) => [f.clientId, f.text]), [['ca', 'a'], ['cb', 'b']]);
  conn.ack(again[0]!, msg(C1, 1));
  conn.ack(again[1]!, msg(C1, 2));
  assert.deepEqual([(await a).seq, (await b).seq], [1, 2]);
});

test('a non-retryable error rejects only that send', { timeout: 10_000 }, async (t) => {
  const { server, client } = await setup(t);
  const { conn } = await open(server, client);
  const a = client.send(C1, 'a');
  const b = client.send(C1, 'b');
  const fa = await conn.nextOf('send');
  const fb = await conn.nextOf('send');
  conn.send({ type: 'error', id: fa.id, code: 'forbidden', message: 'not a member' });
  conn.ack(fb, msg(C1, 1));
  await assert.rejects(a, (e: unknown) => e instanceof ConfabError && e.code === 'forbidden' && !e.retryable);
  assert.equal((await b).seq, 1);
});

test('oversized messages are refused locally, without reaching the server', { timeout: 10_000 }, async (t) => {
  const { server, client } = await setup(t);
  await open(server, client);
  const big = 'x'.repeat(client.welcome!.limits.maxMessageBytes + 1);
  await assert.rejects(client.send(C1, big), (e: unknown) => e instanceof ConfabError && e.code === 'message_too_large');
  await assert.rejects(client.send(C1, ''), (e: unknown) => e instanceof ConfabError && e.code === 'bad_request');
  await assert.rejects(client.send(C1, 'x', { clientId: 'has space' }), (e: unknown) => e instanceof ConfabError && e.code === 'bad_request');
});

test('edit and delete go through the outbox with the ack as result', { timeout: 10_000 }, async (t) => {
  const { server, client } = await setup(t);
  const { conn } = await open(server, client);
  const target = msg(C1, 1).messageId;
  const edited = client.edit(C1, target, 'fixed');
  const deleted = client.delete(C1, target);
  const fe = await conn.nextOf('edit');
  const fd = await conn.nextOf('delete');
  assert.equal(fe.messageId, target);
  assert.equal(fe.text, 'fixed');
  assert.equal(fd.messageId, target);
  conn.ack(fe, msg(C1, 2, { kind: 'edit', target: { messageId: target, seq: 1 } }));
  conn.ack(fd, msg(C1, 3, { kind: 'delete', text: '', target: { messageId: target, seq: 1 } }));
  assert.equal((await edited).kind, 'edit');
  assert.equal((await deleted).kind, 'delete');
});

test('auth_failed (4001) ends the client: connect rejects with the server error, sends reject', { timeout: 10_000 }, async (t) => {
  const { server, client, states } = await setup(t);
  const welcomed = client.connect();
  const pending = assert.rejects(client.send(C1, 'never'), (e: unknown) => e instanceof ConfabError && e.code === 'closed');
  const conn = await server.connection();
  await conn.nextOf('hello');
  conn.send({ type: 'error', code: 'invalid_token', message: 'bad token' });
  conn.close(4001, 'auth_failed');
  await assert.rejects(welcomed, (e: unknown) => e instanceof ConfabError && e.code === 'invalid_token');
  await pending;
  assert.equal(client.state, 'closed');
  assert.deepEqual(states.at(-1), { state: 'closed', previous: 'connecting', code: 4001, reason: 'auth_failed' });
  assert.equal(states.filter((s) => s.state === 'reconnecting').length, 0);
});

test('token_expired with a fixed token cannot refresh: the client stops', { timeout: 10_000 }, async (t) => {
  const { server, client } = await setup(t);
  const welcomed = client.connect();
  const conn = await server.connection();
  await conn.nextOf('hello');
  conn.close(4002, 'token_expired');
  await assert.rejects(welcomed, (e: unknown) => e instanceof ConfabError && e.code === 'closed');
  assert.equal(client.state, 'closed');
});

test('backoff grows across failed attempts and resets after a welcome', { timeout: 10_000 }, async (t) => {
  const { server, client, states } = await setup(t, { random: () => 0.5, reconnect: { minDelayMs: 4, maxDelayMs: 1000 } });
  void client.connect();
  for (let i = 0; i < 3; i++) {
    const c = await server.connection();
    await c.nextOf('hello');
    c.close(4101, 'going_away');
  }
  const ok = await server.connection();
  await ok.accept();
  await client.once('welcome');
  ok.close(4101, 'going_away');
  await (await server.connection()).accept();
  await client.once('welcome');
  const delays = states.filter((s) => s.state === 'reconnecting').map((s) => s.delayMs);
  assert.deepEqual(delays, [2, 4, 8, 2]);
});

test('too_many_connections (4102) and try_again_later (4103) reconnect with growing backoff; they never stop the client', { timeout: 10_000 }, async (t) => {
  const { server, client, states } = await setup(t, { random: () => 0.5, reconnect: { minDelayMs: 4, maxDelayMs: 1000 } });
  const welcomed = client.connect();
  // try_again_later comes right after the upgrade, before any hello is answered.
  (await server.connection()).close(4103, 'try_again_later');
  const c2 = await server.connection();
  await c2.nextOf('hello');
  c2.send({ type: 'error', code: 'rate_limited', message: 'At most 1 connections per user on this node.', retryAfterMs: 1000 });
  c2.close(4102, 'too_many_connections');
  (await server.connection()).close(4103, 'try_again_later');
  await (await server.connection()).accept();
  await welcomed;
  assert.equal(client.state, 'open');
  const reconnecting = states.filter((s) => s.state === 'reconnecting');
  assert.deepEqual(reconnecting.map((s) => s.code), [4103, 4102, 4103]);
  assert.deepEqual(reconnecting.map((s) => s.delayMs), [2, 4, 8], 'exponential backoff across the refusals');
  assert.ok(!states.some((s) => s.state === 'closed'));
});

test('close() rejects pending work with closed and stops reconnecting', { timeout: 10_000 }, async (t) => {
  const { server, client, states } = await setup(t);
  const { conn } = await open(server, client);
  const isClosed = (e: unknown) => e instanceof ConfabError && e.code === 'closed';
  const pending = assert.rejects(client.send(C1, 'x'), isClosed);
  await conn.nextOf('send');
  const read = assert.rejects(client.markRead(C1, 3), isClosed);
  await conn.nextOf('read');
  await client.close();
  await pending;
  await read;
  await conn.closed;
  assert.deepEqual(states.at(-1), { state: 'closed', previous: 'open', code: 1000, reason: 'client closed' });
  await assert.rejects(client.send(C1, 'late'), (e: unknown) => e instanceof ConfabError && e.code === 'closed');
  await assert.rejects(client.connect(), (e: unknown) => e instanceof ConfabError && e.code === 'closed');
});

test('requests: markRead, history, sync and ping get their answers; errors reject', { timeout: 10_000 }, async (t) => {
  const { server, client, messages } = await setup(t);
  const { conn } = await open(server, client);

  const read = client.markRead(C1, 4);
  const fr = await conn.nextOf('read');
  assert.deepEqual({ ...fr, id: undefined }, { type: 'read', id: undefined, conversationId: C1, seq: 4 });
  conn.send({ type: 'ok', id: fr.id });
  await read;

  const history = client.history(C1, { before: 10, limit: 2 });
  const fh = await conn.nextOf('history');
  assert.equal(fh.before, 10);
  assert.equal(fh.limit, 2);
  conn.send({ type: 'history.result', id: fh.id, conversationId: C1, messages: [msg(C1, 8), msg(C1, 9)], hasMore: true });
  const page = await history;
  assert.deepEqual(page.messages.map((m) => m.seq), [8, 9]);
  assert.equal(page.hasMore, true);
  assert.deepEqual(messages, [], 'history does not produce message events');

  const synced = client.sync(C2);
  const fs = await conn.nextOf('sync');
  assert.equal(fs.after, 0);
  conn.send({ type: 'sync.page', conversationId: C2, messages: [msg(C2, 1), msg(C2, 2)] });
  conn.send({ type: 'sync.done', conversationId: C2, seq: 2, id: fs.id });
  assert.deepEqual(await synced, { conversationId: C2, seq: 2 });
  assert.deepEqual(seqs(messages), ['c2:1', 'c2:2']);

  const ping = client.ping();
  const fp = await conn.nextOf('ping');
  conn.send({ type: 'pong', id: fp.id, time: 123 });
  assert.equal((await ping).serverTime, 123);

  const denied = client.history(C2);
  const fd = await conn.nextOf('history');
  conn.send({ type: 'error', id: fd.id, code: 'forbidden', message: 'no' });
  await assert.rejects(denied, (e: unknown) => e instanceof ConfabError && e.code === 'forbidden');
});

test('requests wait through a reconnect and are resent', { timeout: 10_000 }, async (t) => {
  const { server, client } = await setup(t);
  const { conn } = await open(server, client);
  const read = client.markRead(C1, 4);
  await conn.nextOf('read');
  conn.close(4101, 'going_away');
  const second = await server.connection();
  await second.accept();
  const again = await second.nextOf('read');
  second.send({ type: 'ok', id: again.id });
  await read;
});

test('requests time out', { timeout: 10_000 }, async (t) => {
  const { server, client } = await setup(t, { requestTimeoutMs: 30 });
  const { conn } = await open(server, client);
  const read = client.markRead(C1, 4);
  await conn.nextOf('read');
  await assert.rejects(read, (e: unknown) => e instanceof ConfabError && e.code === 'timeout' && e.retryable);
});

test('events: read.state, conversation changes (removed untracks), unsolicited errors, bad frames', { timeout: 10_000 }, async (t) => {
  const { server, client } = await setup(t, { cursors: { [C1]: 3 } });
  const { conn } = await open(server, client);
  const readState = client.once('readState');
  conn.send({ type: 'read.state', conversationId: C1, seq: 3, unread: 0 });
  assert.deepEqual(await readState, { conversationId: C1, seq: 3, unread: 0 });

  const removed = client.once('conversation');
  conn.send({ type: 'conversation', change: 'removed', conversationId: C1 });
  assert.deepEqual(await removed, { change: 'removed', conversationId: C1 });
  assert.deepEqual(client.cursors(), {});

  const error = client.once('error');
  conn.send({ type: 'error', code: 'internal', message: 'oops' });
  const e = await error;
  assert.equal(e.code, 'internal');

  const bad = client.once('error');
  conn.send({ type: 'message', message: { seq: 'nope' } });
  assert.equal((await bad).code, 'bad_response');

  const next = client.once('message');
  conn.send({ type: 'some.future.frame', x: 1 }); // unknown types are skipped silently
  conn.send({ type: 'message', message: msg(C2, 1) });
  assert.equal((await next).seq, 1);
});

test('heartbeat: a silent server is detected and the client reconnects', { timeout: 10_000 }, async (t) => {
  const { server, client } = await setup(t, { heartbeatIntervalMs: 20, heartbeatTimeoutMs: 20 });
  const { conn } = await open(server, client);
  await conn.nextOf('ping'); // not answered
  const lost = await client.once('state', (s) => s.state === 'reconnecting');
  assert.match(lost.reason ?? '', /ping/);
  await (await server.connection()).accept();
});

test('track() while open catches the conversation up at once', { timeout: 10_000 }, async (t) => {
  const { server, client } = await setup(t);
  const { conn } = await open(server, client);
  client.track(C2, 7);
  const f = await conn.nextOf('sync');
  assert.equal(f.conversationId, C2);
  assert.equal(f.after, 7);
  assert.throws(() => client.track('not-a-uuid', 1), TypeError);
});

/** A scriptable NetworkLike: `set(false)` is the browser's `offline` event. */
function fakeNetwork(initial: boolean) {
  let online = initial;
  const listeners = new Set<(online: boolean) => void>();
  return {
    online: () => online,
    subscribe(listener: (online: boolean) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(value: boolean) {
      online = value;
      for (const l of listeners) l(value);
    },
    get listeners() { return listeners.size; },
  };
}

test('network offline: the socket is dropped at once, sends wait in the outbox, back online they go out in order once', { timeout: 10_000 }, async (t) => {
  const network = fakeNetwork(true);
  const { server, client, states } = await setup(t, { network, reconnect: { minDelayMs: 60_000, maxDelayMs: 60_000 } });
  const { conn } = await open(server, client);
  network.set(false);
  await conn.closed; // dropped by the client, not by a timeout
  assert.equal(client.online, false);
  assert.equal(client.state, 'reconnecting');
  assert.equal(states.at(-1)?.reason, 'network offline');
  const a = client.send(C1, 'first', { clientId: 'off-1' });
  const b = client.send(C1, 'second', { clientId: 'off-2' });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(server.connections, 1, 'no attempt while offline');
  assert.equal(client.pendingSends, 2);
  client.reconnect(); // ignored while offline
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(server.connections, 1);

  // Back online: a new connection at once (the backoff here is a minute), the outbox in order.
  network.set(true);
  const second = await server.connection();
  await second.accept();
  const f1 = await second.nextOf('send');
  const f2 = await second.nextOf('send');
  assert.deepEqual([f1.clientId, f2.clientId], ['off-1', 'off-2']);
  second.ack(f1, msg(C1, 1, { text: 'first' }));
  second.ack(f2, msg(C1, 2, { text: 'second' }));
  assert.deepEqual((await Promise.all([a, b])).map((m) => m.seq), [1, 2]);
  assert.equal(client.state, 'open');
  assert.equal(server.connections, 2);
});

test('network: a client created offline waits for the network; close() stops listening to it', { timeout: 10_000 }, async (t) => {
  const network = fakeNetwork(false);
  const { server, client } = await setup(t, { network });
  const welcomed = client.connect();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(server.connections, 0);
  assert.equal(client.state, 'reconnecting');
  network.set(true);
  const conn = await server.connection();
  await conn.accept();
  await welcomed;
  assert.equal(network.listeners, 1);
  await client.close();
  assert.equal(network.listeners, 0);
});
