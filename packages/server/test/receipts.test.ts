// Issue "receipts and presence", tests 1, 2, 3 and 7: delivery and read receipts from cursors,
// monotonic read cursors shared by a user's devices, exact unread counts, bad receipts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerFrame, Session } from '@confab/protocol';
import { http, register, scrape, startNode, uname, type TestNode } from './helpers.js';
import { rawSocket, type RawSocket } from './ws-raw.js';
import { before, after } from 'node:test';

type Receipts = Extract<ServerFrame, { type: 'receipts' }>;

let node: TestNode;
before(async () => { node = await startNode({ limits: { sendsPerSecond: 10_000, sendBurst: 10_000, userSendsPerSecond: 10_000, userSendBurst: 10_000 } }); });
after(async () => { await node.close(); });

const sockets: RawSocket[] = [];
after(() => { for (const s of sockets) s.ws.close(); });
async function connect(session: Session): Promise<RawSocket> {
  const s = await rawSocket(node.url);
  sockets.push(s);
  await s.hello(session.accessToken);
  return s;
}
let rid = 0;
async function send(s: RawSocket, conversationId: string, text: string) {
  const id = `s${rid++}`;
  s.send({ type: 'send', id, conversationId, clientId: id, text });
  const ack = await s.next((f) => (f.type === 'ack' || f.type === 'error') && f.id === id);
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  return ack.type === 'ack' ? ack.message : assert.fail();
}
const receiptsOf = (s: RawSocket, cid: string) => s.frames.filter((f): f is Receipts => f.type === 'receipts' && f.conversationId === cid);
const view = async (token: string, cid: string) => (await http(node.url, 'GET', `/v1/conversations/${cid}/receipts`, undefined, token)).body;

describe('delivery and read receipts', () => {
  test('1:1: sent, then delivered, then read, seen by the sender in that order', async () => {
    const [a, b] = await Promise.all([register(node.url, uname('ra')), register(node.url, uname('rb'))]);
    const conv = (await http(node.url, 'POST', '/v1/conversations/direct', { username: b.user.username }, a.accessToken)).body;
    const sa = await connect(a);
    const sb1 = await connect(b);
    const sb2 = await connect(b); // a second device of the recipient
    const m = await send(sa, conv.id, 'did you get this?');
    await sb1.next((f) => f.type === 'message' && f.message.seq === m.seq);
    await sb2.next((f) => f.type === 'message' && f.message.seq === m.seq);
    assert.deepEqual(receiptsOf(sa, conv.id).filter((r) => r.delivered >= m.seq), [], 'sent only: no device acknowledged it yet');
    // Device 1 acknowledges receipt: delivered.
    sb1.send({ type: 'received', conversationId: conv.id, seq: m.seq });
    const delivered = await sa.next<Receipts>((f) => f.type === 'receipts' && f.delivered >= m.seq);
    assert.ok(delivered.read < m.seq, 'delivered, not read yet');
    // Device 2 reads it: read.
    sb2.send({ type: 'read', id: 'r1', conversationId: conv.id, seq: m.seq });
    await sb2.next((f) => f.type === 'ok' && f.id === 'r1');
    const read = await sa.next<Receipts>((f) => f.type === 'receipts' && f.read >= m.seq);
    assert.equal(read.delivered, m.seq);
    // The order the sender saw: delivered never went back, and read came after delivered.
    const seen = receiptsOf(sa, conv.id);
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i]!.delivered >= seen[i - 1]!.delivered && seen[i]!.read >= seen[i - 1]!.read, 'monotonic');
    }
    const firstDelivered = seen.findIndex((r) => r.delivered >= m.seq);
    const firstRead = seen.findIndex((r) => r.read >= m.seq);
    assert.ok(firstDelivered >= 0 && firstRead > firstDelivered, 'sent -> delivered -> read');
    // Both of bob's devices learn the read cursor.
    await sb1.next((f) => f.type === 'read.state' && f.conversationId === conv.id && f.seq === m.seq);
  });

  test('group of 5: per-member transitions and the aggregate', async () => {
    const users = await Promise.all(Array.from({ length: 5 }, () => register(node.url, uname('rg'))));
    const [owner, ...rest] = users as [Session, ...Session[]];
    const g = (await http(node.url, 'POST', '/v1/conversations', { name: 'receipts', members: rest.map((u) => u.user.username) }, owner.accessToken)).body;
    const so = await connect(owner);
    const devices = await Promise.all(rest.map((u) => connect(u)));
    const m = await send(so, g.id, 'hello group');
    const member = (v: any, u: Session) => v.members.find((x: any) => x.userId === u.user.id);
    let v = await view(owner.accessToken, g.id);
    assert.equal(member(v, owner).read, m.seq, "the sender's cursors move to its message");
    for (const u of rest) assert.deepEqual([member(v, u).delivered, member(v, u).read], [0, 0], 'sent');
    // Each recipient device acknowledges; the aggregate moves only when the last one has.
    for (const [i, d] of devices.entries()) {
      await d.next((f) => f.type === 'message' && f.message.seq === m.seq);
      d.send({ type: 'received', id: `d${i}`, conversationId: g.id, seq: m.seq });
      await waitFor(async () => member(await view(owner.accessToken, g.id), rest[i]!).delivered === m.seq);
      v = await view(owner.accessToken, g.id);
      assert.equal(member(v, rest[i]!).read, 0, `member ${i}: delivered, not read`);
      assert.equal(v.delivered, i === devices.length - 1 ? m.seq : 0, 'aggregate: delivered to all only at the end');
    }
    await so.next<Receipts>((f) => f.type === 'receipts' && f.delivered === m.seq && f.read < m.seq);
    for (const [i, d] of devices.entries()) {
      d.send({ type: 'read', id: `rd${i}`, conversationId: g.id, seq: m.seq });
      await d.next((f) => f.type === 'ok' && f.id === `rd${i}`);
      v = await view(owner.accessToken, g.id);
      assert.equal(member(v, rest[i]!).read, m.seq, `member ${i}: read`);
      assert.equal(v.read, i === devices.length - 1 ? m.seq : 0, 'aggregate: read by all only at the end');
    }
    await so.next<Receipts>((f) => f.type === 'receipts' && f.read === m.seq);
    // Every member's device is told the aggregate too.
    await devices[0]!.next((f) => f.type === 'receipts' && f.read === m.seq);
  });

  test('a read cursor never moves back; a stale read from another device is ignored; devices converge', async () => {
    const [a, b] = await Promise.all([register(node.url, uname('rc')), register(node.url, uname('rc'))]);
    const conv = (await http(node.url, 'POST', '/v1/conversations/direct', { username: b.user.username }, a.accessToken)).body;
    const sa = await connect(a);
    for (let i = 0; i < 10; i++) await send(sa, conv.id, `m${i}`);
    const d1 = await connect(b);
    const d2 = await connect(b);
    d1.send({ type: 'read', id: 'x1', conversationId: conv.id, seq: 8 });
    await d1.next((f) => f.type === 'ok' && f.id === 'x1');
    d2.send({ type: 'read', id: 'x2', conversationId: conv.id, seq: 3 }); // stale: device 2 was behind
    await d2.next((f) => f.type === 'ok' && f.id === 'x2');
    const r = await http(node.url, 'POST', `/v1/conversations/${conv.id}/read`, { seq: 5 }, b.accessToken);
    assert.deepEqual(r.body, { conversationId: conv.id, seq: 8, unread: 2 });
    for (const d of [d1, d2]) {
      const states = d.frames.filter((f) => f.type === 'read.state' && f.conversationId === conv.id);
      assert.ok(states.length > 0);
      assert.ok(states.every((f) => f.type === 'read.state' && f.seq === 8 && f.unread === 2), 'every device only ever saw 8');
    }
    const list = (await http(node.url, 'GET', '/v1/conversations', undefined, b.accessToken)).body;
    assert.equal(list.conversations.find((c: any) => c.id === conv.id).readSeq, 8);
  });
});

describe('unread counts', () => {
  test('exact through a burst of 1,000, partial reads, a second device and deletes', async () => {
    const [a, b, c] = await Promise.all([register(node.url, uname('ua')), register(node.url, uname('ub')), register(node.url, uname('uc'))]);
    const g = (await http(node.url, 'POST', '/v1/conversations', { name: 'burst', members: [b.user.username, c.user.username] }, a.accessToken)).body;
    const sa = await connect(a);
    const b1 = await connect(b);
    const b2 = await connect(b);
    const ids: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const id = `burst${i}`;
      ids.push(id);
      sa.send({ type: 'send', id, conversationId: g.id, clientId: id, text: `m${i}` });
    }
    const acks = await Promise.all(ids.map((id) => sa.next((f) => f.type === 'ack' && f.id === id, 30_000)));
    const bySeq = new Map(acks.map((f) => (f.type === 'ack' ? [f.message.seq, f.message] : assert.fail())));
    const unread = async (s: Session) => (await http(node.url, 'GET', '/v1/conversations', undefined, s.accessToken)).body.conversations.find((x: any) => x.id === g.id).unread;
    assert.equal(await unread(b), 1000);
    assert.equal(await unread(c), 1000);
    assert.equal(await unread(a), 0, 'own messages are never unread');
    // Pushed live, coalesced: the last read.state each of bob's devices got says 1000.
    for (const d of [b1, b2]) await d.next((f) => f.type === 'read.state' && f.conversationId === g.id && f.unread === 1000, 5000);
    // Partial read on device 1; device 2 is told.
    b1.send({ type: 'read', id: 'p1', conversationId: g.id, seq: 400 });
    await b1.next((f) => f.type === 'ok' && f.id === 'p1');
    await b2.next((f) => f.type === 'read.state' && f.conversationId === g.id && f.seq === 400 && f.unread === 600);
    assert.equal(await unread(b), 600);
    // Rule: a deleted message that was unread stops counting; one already read changes nothing.
    const del = async (seq: number) => {
      const r = await http(node.url, 'DELETE', `/v1/conversations/${g.id}/messages/${bySeq.get(seq)!.messageId}`, { clientId: `del${seq}` }, a.accessToken);
      assert.equal(r.status, 200);
    };
    await del(700);
    assert.equal(await unread(b), 599, 'deleted before it was read');
    await del(100);
    assert.equal(await unread(b), 599, 'deleted after it was read');
    await b2.next((f) => f.type === 'read.state' && f.conversationId === g.id && f.unread === 599, 5000);
    // Read on the second device up to the end: zero everywhere.
    b2.send({ type: 'read', id: 'p2', conversationId: g.id, seq: 1002 });
    await b2.next((f) => f.type === 'ok' && f.id === 'p2');
    assert.equal(await unread(b), 0);
    assert.equal(await unread(c), 998, "carol's count only lost the deleted unread messages");
    const total = (await http(node.url, 'GET', '/v1/conversations', undefined, c.accessToken)).body.totalUnread;
    assert.equal(total, 998);
  });
});

describe('unread counts kept per connection', () => {
  const storeCalls = async (method: string) => (await scrape(node.url))('confab_store_calls_total', { method }) ?? 0;

  test('counted on from delivered entries (others, own, deletes, reads elsewhere), the store asked once per connection while busy', async () => {
    const [a, b, c] = await Promise.all([register(node.url, uname('ka')), register(node.url, uname('kb')), register(node.url, uname('kc'))]);
    const g = (await http(node.url, 'POST', '/v1/conversations', { name: 'counted', members: [b.user.username, c.user.username] }, a.accessToken)).body;
    const [sa, b1, b2, sc] = [await connect(a), await connect(b), await connect(b), await connect(c)];
    const restUnread = async () => (await http(node.url, 'GET', '/v1/conversations', undefined, b.accessToken)).body.conversations.find((x: any) => x.id === g.id).unread;
    // Waits until both of bob's devices were last told `expected`, and checks the store agrees.
    const told = async (expected: number, why: string) => {
      for (const d of [b1, b2]) await d.next((f) => f.type === 'read.state' && f.conversationId === g.id && f.unread === expected, 5000);
      assert.equal(await restUnread(), expected, why);
    };
    const before = await storeCalls('unreadCounts');
    // 40 messages from carol over ~1.6 s: three or four push intervals of a busy conversation.
    const first = [];
    for (let i = 0; i < 40; i++) {
      first.push(await send(sc, g.id, `c${i}`));
      await new Promise((r) => setTimeout(r, 40));
    }
    await told(40, "carol's messages count");
    const asked = (await storeCalls('unreadCounts')) - before;
    assert.ok(asked <= 4, `the store was asked ${asked} times for 4 connections; each counts on by itself once it knows`);
    await send(b1, g.id, 'my reply');
    await told(0, 'sending marks everything before it read');
    const later = [await send(sc, g.id, 'x1'), await send(sc, g.id, 'x2'), await send(sc, g.id, 'x3')];
    await told(3, 'three after my reply');
    const del = async (who: Session, m: { messageId: string }, clientId: string) => {
      const r = await http(node.url, 'DELETE', `/v1/conversations/${g.id}/messages/${m.messageId}`, { clientId }, who.accessToken);
      assert.equal(r.status, 200, JSON.stringify(r.body));
    };
    await del(a, later[0]!, 'mod-del');
    await told(2, "the owner deleted one of carol's unread messages");
    await del(c, later[1]!, 'own-del');
    await told(1, 'carol deleted one of her unread messages');
    await del(c, first[3]!, 'old-del');
    await send(sc, g.id, 'x4');
    await told(2, 'a deleted message that was read changes nothing; x4 counts');
    // Read on the second device: the first is told, then counts on from the new cursor.
    b2.send({ type: 'read', id: 'rd', conversationId: g.id, seq: later[2]!.seq });
    await b2.next((f) => f.type === 'ok' && f.id === 'rd');
    await told(1, 'read up to x3 elsewhere: x4 is left');
    await send(sc, g.id, 'x5');
    await send(sa, g.id, 'from alice');
    await told(3, 'x4, x5 and alice\'s message');
  });
});

describe('bad receipts', () => {
  test('beyond the last seq, not a member, unknown conversation or message: documented errors, nothing stored', async () => {
    const [a, b, x] = await Promise.all([register(node.url, uname('ba')), register(node.url, uname('bb')), register(node.url, uname('bx'))]);
    const conv = (await http(node.url, 'POST', '/v1/conversations/direct', { username: b.user.username }, a.accessToken)).body;
    const sa = await connect(a);
    await send(sa, conv.id, 'one');
    await send(sa, conv.id, 'two');
    const sb = await connect(b);
    const sx = await connect(x);
    const err = async (s: RawSocket, frame: object, id: string) => {
      s.send({ ...frame, id });
      const f = await s.next((y) => y.type === 'error' && y.id === id);
      return f.type === 'error' ? f.code : undefined;
    };
    assert.equal(await err(sb, { type: 'read', conversationId: conv.id, seq: 3 }, 'e1'), 'seq_out_of_range');
    assert.equal(await err(sb, { type: 'received', conversationId: conv.id, seq: 99 }, 'e2'), 'seq_out_of_range');
    assert.equal(await err(sx, { type: 'received', conversationId: conv.id, seq: 1 }, 'e3'), 'forbidden');
    assert.equal(await err(sx, { type: 'read', conversationId: conv.id, seq: 1 }, 'e4'), 'forbidden');
    assert.equal(await err(sb, { type: 'received', conversationId: '01a2026d-0000-7000-8000-000000000000', seq: 1 }, 'e5'), 'conversation_not_found');
    assert.equal(await err(sb, { type: 'received', conversationId: conv.id, seq: -1 }, 'e6'), 'bad_request');
    assert.equal(await err(sb, { type: 'delete', conversationId: conv.id, messageId: '01a2026d-0000-7000-8000-000000000001', clientId: 'zz' }, 'e7'), 'message_not_found');
    const rest = await http(node.url, 'POST', `/v1/conversations/${conv.id}/read`, { seq: 50 }, b.accessToken);
    assert.equal(rest.status, 400);
    assert.equal(rest.body.error.code, 'seq_out_of_range');
    assert.equal((await http(node.url, 'GET', `/v1/conversations/${conv.id}/receipts`, undefined, x.accessToken)).status, 403);
    const v = await view(a.accessToken, conv.id);
    const bob = v.members.find((m: any) => m.userId === b.user.id);
    assert.deepEqual([bob.delivered, bob.read], [0, 0], 'nothing stored');
    assert.equal((await http(node.url, 'GET', `/v1/conversations/${conv.id}/messages`, undefined, a.accessToken)).body.messages.length, 2);
  });
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
