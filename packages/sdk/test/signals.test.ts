// Receipts, unread counts, presence and typing in ConfabClient, against the scripted server:
// coalesced `received` frames, state re-sent after reconnects, typing expiry and throttling.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import type { Message } from '@confab/protocol';
import { ConfabClient, ConfabError } from '../src/index.js';
import type { ClientOptions, Presence, Receipts, TypingChange } from '../src/index.js';
import { C1, C2, FakeServer, msg } from './fake-server.js';
import type { FakeConnection, Received } from './fake-server.js';

const BOB = '01a2026d-759c-72cf-bcf4-95578b9fbd3b';
const CAROL = '01a2026d-759c-72cf-bcf4-95578b9fbd3c';
const fromBob = (conversationId: string, seq: number, extra: Partial<Message> = {}) => msg(conversationId, seq, { sender: BOB, senderUsername: 'bob', ...extra });

async function setup(t: TestContext, options: Partial<ClientOptions> = {}) {
  const server = await FakeServer.start();
  const client = new ConfabClient({ url: server.url, token: 'tok', WebSocket, random: () => 0, heartbeatIntervalMs: 0, receiptDelayMs: 30, ...options });
  t.after(async () => {
    await client.close();
    await server.stop();
  });
  const welcomed = client.connect();
  const conn = await server.connection();
  await conn.accept();
  await welcomed;
  return { server, client, conn };
}

/** Every frame the client sends until (and without) its next ping: a barrier for "nothing else was sent". */
async function framesUntilPing(client: ConfabClient, conn: FakeConnection): Promise<Received[]> {
  void client.ping().catch(() => undefined);
  const frames: Received[] = [];
  for (let f = await conn.next(); f.type !== 'ping'; f = await conn.next()) frames.push(f);
  return frames;
}

/** Collects `received` frames until one acknowledges `seq`. */
async function receivedUpTo(conn: FakeConnection, seq: number): Promise<Received[]> {
  const got: Received[] = [];
  for (;;) {
    const f = await conn.nextOf('received');
    got.push(f);
    if (f.seq === seq) return got;
  }
}

test('receipts: a burst of 200 messages becomes a few coalesced `received` frames, the last one at the cursor', { timeout: 10_000 }, async (t) => {
  const { client, conn } = await setup(t);
  for (let s = 1; s <= 200; s++) conn.send({ type: 'message', message: fromBob(C1, s) });
  const got = await receivedUpTo(conn, 200);
  assert.ok(got.length <= 3, `coalesced: ${got.length} frames for 200 messages`);
  assert.ok(got.every((f) => f.conversationId === C1 && (f.seq as number) <= 200 && f.id === undefined));
  assert.deepEqual(got.map((f) => f.seq), [...got.map((f) => f.seq as number)].sort((a, b) => a - b), 'increasing');
  await sleep(80);
  assert.deepEqual((await framesUntilPing(client, conn)).filter((f) => f.type === 'received'), [], 'nothing more once acknowledged');

  // Catch-up pages are acknowledged too, per conversation.
  const synced = client.sync(C2);
  const sync = await conn.nextOf('sync');
  conn.send({ type: 'sync.page', conversationId: C2, messages: [fromBob(C2, 1), fromBob(C2, 2), fromBob(C2, 3)] });
  conn.send({ type: 'sync.done', conversationId: C2, seq: 3, id: sync.id });
  await synced;
  assert.deepEqual((await conn.nextOf('received')), { type: 'received', conversationId: C2, seq: 3 });
});

test('receipts: never beyond the cursor (a held entry after a gap waits), none for our own entries', { timeout: 10_000 }, async (t) => {
  const { client, conn } = await setup(t);
  conn.send({ type: 'message', message: fromBob(C1, 1) });
  conn.send({ type: 'message', message: fromBob(C1, 2) });
  conn.send({ type: 'message', message: fromBob(C1, 4) }); // 3 is missing: 4 is held
  const sync = await conn.nextOf('sync');
  assert.deepEqual(await conn.nextOf('received'), { type: 'received', conversationId: C1, seq: 2 });
  conn.send({ type: 'sync.page', conversationId: C1, messages: [fromBob(C1, 3), fromBob(C1, 4)] });
  conn.send({ type: 'sync.done', conversationId: C1, seq: 4, id: sync.id });
  assert.deepEqual(await conn.nextOf('received'), { type: 'received', conversationId: C1, seq: 4 });

  // Our own entries (sent from this or another device) moved our cursors on the server already.
  const mine = client.once('message', (m) => m.seq === 6);
  conn.send({ type: 'message', message: msg(C1, 5) });
  conn.send({ type: 'message', message: msg(C1, 6) });
  await mine;
  await sleep(80);
  assert.deepEqual((await framesUntilPing(client, conn)).filter((f) => f.type === 'received'), []);
  conn.send({ type: 'message', message: fromBob(C1, 7) });
  assert.equal((await conn.nextOf('received')).seq, 7);
});

test('receipts: pending ones are sent before close(); autoReceipts false sends none, markReceived is capped at the cursor', { timeout: 10_000 }, async (t) => {
  const { client, conn } = await setup(t, { receiptDelayMs: 60_000 });
  // A listener that closes the client on the entry it waited for (as `confab tail --count` does).
  let closing: Promise<void> | undefined;
  client.on('message', (m) => { if (m.seq === 3) closing = client.close(); });
  for (let s = 1; s <= 3; s++) conn.send({ type: 'message', message: fromBob(C1, s) });
  assert.deepEqual(await conn.nextOf('received'), { type: 'received', conversationId: C1, seq: 3 }, 'flushed by close()');
  await conn.closed;
  await closing;

  const manual = await setup(t, { autoReceipts: false });
  const second = manual.client.once('message', (m) => m.seq === 2);
  manual.conn.send({ type: 'message', message: fromBob(C1, 1) });
  manual.conn.send({ type: 'message', message: fromBob(C1, 2) });
  await second;
  await sleep(80);
  assert.deepEqual((await framesUntilPing(manual.client, manual.conn)).filter((f) => f.type === 'received'), []);
  assert.equal(manual.client.markReceived(C1, 99), true);
  assert.deepEqual(await manual.conn.nextOf('received'), { type: 'received', conversationId: C1, seq: 2 }, 'capped at the cursor');
  assert.equal(manual.client.markReceived(C1), false, 'already acknowledged');
});

test('receipts and read.state events are kept per conversation: receiptsOf, unreadOf', { timeout: 10_000 }, async (t) => {
  const { client, conn } = await setup(t);
  const events: Receipts[] = [];
  client.on('receipts', (r) => events.push(r));
  assert.equal(client.receiptsOf(C1), undefined);
  const second = client.once('receipts', (r) => r.read === 3);
  conn.send({ type: 'receipts', conversationId: C1, delivered: 4, read: 2 });
  conn.send({ type: 'receipts', conversationId: C1, delivered: 5, read: 3 });
  await second;
  assert.deepEqual(events, [{ conversationId: C1, delivered: 4, read: 2 }, { conversationId: C1, delivered: 5, read: 3 }]);
  assert.deepEqual(client.receiptsOf(C1), { conversationId: C1, delivered: 5, read: 3 });

  const conversation = {
    id: C2, kind: 'group', name: 'Team', memberCount: 3, role: 'member', createdAt: 1, updatedAt: 1, lastSeq: 9, lastMessage: null, readSeq: 2, unread: 7,
  };
  const added = client.once('conversation');
  conn.send({ type: 'conversation', change: 'added', conversationId: C2, conversation });
  await added;
  assert.equal(client.unreadOf(C2), 7, 'seeded from the conversation frame');
  const read = client.once('readState', (r) => r.unread === 1);
  conn.send({ type: 'read.state', conversationId: C2, seq: 8, unread: 1 });
  assert.deepEqual(await read, { conversationId: C2, seq: 8, unread: 1 });
  assert.equal(client.unreadOf(C2), 1);
  assert.deepEqual(client.readStateOf(C2), { conversationId: C2, seq: 8, unread: 1 });
  const removed = client.once('conversation');
  conn.send({ type: 'conversation', change: 'removed', conversationId: C2 });
  await removed;
  assert.equal(client.unreadOf(C2), undefined);
});

test('presence: watch answered, changes tracked, the watch list and setPresence re-sent after every reconnect', { timeout: 10_000 }, async (t) => {
  const { server, client, conn } = await setup(t);
  const events: Presence[] = [];
  client.on('presence', (p) => events.push(p));
  client.setPresence('away');
  assert.deepEqual(await conn.nextOf('presence.set'), { type: 'presence.set', status: 'away' });

  const watched = client.watchPresence([BOB, CAROL]);
  const watch = await conn.nextOf('presence.watch');
  assert.deepEqual(watch.userIds, [BOB, CAROL]);
  conn.send({ type: 'presence', id: watch.id, users: [{ userId: BOB, status: 'online', lastSeen: null }], denied: [CAROL] });
  assert.deepEqual(await watched, { users: [{ userId: BOB, status: 'online', lastSeen: null }], denied: [CAROL] });
  assert.deepEqual(client.presenceOf(BOB), { userId: BOB, status: 'online', lastSeen: null });
  assert.equal(client.presenceOf(CAROL), undefined);

  const away = client.once('presence', (p) => p.status === 'away');
  conn.send({ type: 'presence', users: [{ userId: BOB, status: 'away', lastSeen: null }] });
  await away;
  assert.equal(client.presenceOf(BOB)?.status, 'away');

  // The server forgets both on a new connection: the SDK says them again and emits the fresh state.
  conn.close(4101, 'going_away');
  const second = await server.connection();
  await second.accept();
  const [set, rewatch] = [await second.next(), await second.next()];
  assert.deepEqual(set, { type: 'presence.set', status: 'away' });
  assert.equal(rewatch.type, 'presence.watch');
  assert.deepEqual(rewatch.userIds, [BOB, CAROL]);
  const fresh = client.once('presence', (p) => p.status === 'offline');
  second.send({ type: 'presence', id: rewatch.id, users: [{ userId: BOB, status: 'offline', lastSeen: 1_700_000_000_000 }], denied: [CAROL] });
  assert.deepEqual(await fresh, { userId: BOB, status: 'offline', lastSeen: 1_700_000_000_000 });
  assert.deepEqual(client.presenceOf(BOB), { userId: BOB, status: 'offline', lastSeen: 1_700_000_000_000 });
  assert.deepEqual(events.map((p) => p.status), ['online', 'away', 'offline']);

  // A watch still unanswered when the connection drops is sent once on the next one, not twice.
  const narrowed = client.watchPresence([BOB]);
  await second.nextOf('presence.watch');
  second.close(4101, 'going_away');
  const third = await server.connection();
  await third.accept();
  const frames = await framesUntilPing(client, third);
  const watches = frames.filter((f) => f.type === 'presence.watch');
  assert.equal(watches.length, 1);
  assert.deepEqual(watches[0]!.userIds, [BOB]);
  third.send({ type: 'presence', id: watches[0]!.id, users: [{ userId: BOB, status: 'online', lastSeen: null }], denied: [] });
  assert.deepEqual(await narrowed, { users: [{ userId: BOB, status: 'online', lastSeen: null }], denied: [] });

  await assert.rejects(client.watchPresence(['bob']), (e: unknown) => e instanceof ConfabError && e.code === 'bad_request');
  assert.throws(() => client.setPresence('offline' as 'away'), TypeError);
});

test('typing: indicators expire by themselves, renewals are silent, a message from the typist or typing:false ends them', { timeout: 10_000 }, async (t) => {
  const { client, conn } = await setup(t);
  const events: TypingChange[] = [];
  client.on('typing', (c) => events.push(c));
  const typing = (userId: string, username: string, on: boolean, expiresInMs = 60_000) =>
    conn.send({ type: 'typing', conversationId: C1, userId, username, typing: on, expiresInMs });

  const started = client.once('typing');
  typing(BOB, 'bob', true, 80);
  assert.deepEqual(await started, { conversationId: C1, userId: BOB, username: 'bob', typing: true });
  assert.deepEqual(client.typingUsers(C1), [{ userId: BOB, username: 'bob' }]);
  const startedAt = Date.now();
  const expired = client.once('typing', (c) => !c.typing);
  typing(BOB, 'bob', true, 80); // a renewal: no event, the expiry starts again
  assert.deepEqual(await expired, { conversationId: C1, userId: BOB, username: 'bob', typing: false });
  assert.ok(Date.now() - startedAt >= 70, 'expired after expiresInMs');
  assert.deepEqual(client.typingUsers(C1), []);

  // A message from the typist ends the indicator; one from someone else does not.
  typing(BOB, 'bob', true);
  typing(CAROL, 'carol', true);
  const bobStopped = client.once('typing', (c) => !c.typing);
  conn.send({ type: 'message', message: msg(C1, 1, { sender: CAROL, senderUsername: 'carol', kind: 'edit', target: { messageId: msg(C1, 1).messageId, seq: 1 } }) });
  conn.send({ type: 'message', message: fromBob(C1, 2) });
  assert.equal((await bobStopped).userId, BOB);
  assert.deepEqual(client.typingUsers(C1), [{ userId: CAROL, username: 'carol' }]);
  const carolStopped = client.once('typing', (c) => !c.typing);
  typing(CAROL, 'carol', false);
  assert.equal((await carolStopped).userId, CAROL);
  assert.deepEqual(client.typingUsers(C1), []);
  assert.deepEqual(events.map((c) => `${c.username}:${c.typing}`), ['bob:true', 'bob:false', 'bob:true', 'carol:true', 'bob:false', 'carol:false']);
});

test('typing: sending is throttled to one per typingIntervalMs/2; false always goes out; a sent message ends it', { timeout: 10_000 }, async (t) => {
  let clock = 1_000_000;
  const { client, conn } = await setup(t, { now: () => clock });
  const half = client.welcome!.limits.typingIntervalMs / 2;
  const sent: boolean[] = [];
  sent.push(client.typing(C1)); // sent
  sent.push(client.typing(C1)); // throttled
  clock += half - 1;
  sent.push(client.typing(C1)); // still throttled
  clock += 1;
  sent.push(client.typing(C1)); // sent
  sent.push(client.typing(C1, false)); // always sent
  sent.push(client.typing(C1, false)); // always sent
  sent.push(client.typing(C1)); // sent again at once after a stop
  sent.push(client.typing(C2)); // another conversation has its own throttle
  void client.send(C1, 'done typing').catch(() => undefined);
  sent.push(client.typing(C1)); // a message ended the typing: sent at once
  assert.deepEqual(sent, [true, false, false, true, true, true, true, true, true]);
  const frames = (await framesUntilPing(client, conn)).filter((f) => f.type === 'typing' || f.type === 'send');
  assert.deepEqual(frames.map((f) => (f.type === 'send' ? 'send' : `${f.conversationId === C1 ? 'c1' : 'c2'}:${String(f.typing)}`)), [
    'c1:true', 'c1:true', 'c1:false', 'c1:false', 'c1:true', 'c2:true', 'send', 'c1:true',
  ]);
  assert.throws(() => client.typing('nope'), TypeError);
});
