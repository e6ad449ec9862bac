// Issue "chat core", test 4: a device disconnects, 500 messages arrive, it reconnects and
// receives exactly those 500, in order, then live ones, no duplicate and no gap, while others
// keep sending during the catch-up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message, ServerFrame } from '@confab/protocol';
import { seqs, useNode } from './clients.js';
import { register, uname } from './helpers.js';
import { rawSocket } from './ws-raw.js';

const PAGE = 50;
const node = useNode({ limits: { maxPageSize: PAGE, sendsPerSecond: 10_000, sendBurst: 10_000, userSendsPerSecond: 10_000, userSendBurst: 10_000 } });

async function setup() {
  const [a, b, c] = await Promise.all([register(node.url, uname('o')), register(node.url, uname('o')), register(node.url, uname('o'))]);
  const da = await node.dev(a);
  const dc = await node.dev(c);
  const group = await da.api.createGroup('offline', [b.user.username, c.user.username]);
  return { a, b, c, da, dc, group };
}

test('SDK device: offline for 500, back during a send storm: exactly the missed ones, then live', async () => {
  const { b, da, dc, group } = await setup();
  const first = await node.dev(b);
  for (let i = 0; i < 20; i++) await da.client.send(group.id, `before ${i}`);
  await first.waitFor(group.id, 20);
  const cursors = first.client.cursors();
  assert.equal(cursors[group.id], 20);
  await first.client.close();

  await Promise.all(Array.from({ length: 500 }, (_, i) => da.client.send(group.id, `offline ${i}`)));
  // Two members keep sending while the device catches up.
  const storm = Promise.all([
    Promise.all(Array.from({ length: 150 }, (_, i) => da.client.send(group.id, `during a${i}`))),
    Promise.all(Array.from({ length: 150 }, (_, i) => dc.client.send(group.id, `during c${i}`))),
  ]);
  const back = await node.dev(b, { cursors });
  await storm;
  const live = await da.client.send(group.id, 'after everything');
  const seen = await back.waitFor(group.id, 500 + 300 + 1);
  assert.deepEqual(seqs(seen), Array.from({ length: 801 }, (_, i) => 21 + i), 'exactly seq 21..821: no gap, no duplicate, nothing from before');
  assert.equal(seen[0]!.text, 'offline 0');
  assert.equal(seen.at(-1)!.messageId, live.messageId);
  assert.equal(back.client.cursors()[group.id], 821);
});

test('raw frames: bounded pages, then sync.done, then live, contiguous across the switch', async () => {
  const { b, da, dc, group } = await setup();
  for (let i = 0; i < 300; i++) await da.client.send(group.id, `backlog ${i}`);
  const raw = await rawSocket(node.url);
  // Senders start just before the hello, so commits land during the catch-up.
  const storm = Promise.all([
    Promise.all(Array.from({ length: 200 }, (_, i) => da.client.send(group.id, `s-a${i}`))),
    Promise.all(Array.from({ length: 200 }, (_, i) => dc.client.send(group.id, `s-c${i}`))),
  ]);
  raw.send({ type: 'hello', v: 1, token: b.accessToken, cursors: { [group.id]: 10 } });
  await storm;
  const total = 300 + 400;
  const delivered: Message[] = [];
  let done: (ServerFrame & { type: 'sync.done' }) | undefined;
  let liveBeforeDone = 0;
  let pages = 0;
  while (delivered.length < total - 10) {
    const f = await raw.next((x) => ['sync.page', 'sync.done', 'message'].includes(x.type));
    if (f.type === 'sync.page') {
      pages++;
      assert.ok(f.messages.length <= PAGE, `page of ${f.messages.length} > ${PAGE}`);
      assert.equal(done, undefined, 'no page after sync.done');
      delivered.push(...f.messages);
    } else if (f.type === 'sync.done') {
      done = f;
      assert.equal(f.seq, delivered.at(-1)?.seq);
    } else if (f.type === 'message') {
      if (!done) liveBeforeDone++;
      delivered.push(f.message);
    }
  }
  assert.ok(pages >= Math.floor(290 / PAGE), `catch-up came in ${pages} pages`);
  assert.equal(liveBeforeDone, 0, 'no live frame before the catch-up ended');
  assert.ok(done, 'sync.done was sent');
  assert.deepEqual(seqs(delivered), Array.from({ length: total - 10 }, (_, i) => 11 + i));
  // And then live goes on.
  const next = await da.client.send(group.id, 'live after');
  const f = await raw.next((x) => x.type === 'message');
  assert.equal(f.type === 'message' && f.message.messageId, next.messageId);
  raw.ws.close();
});

test('a cursor for a conversation the user is not in is answered with "removed", nothing else', async () => {
  const { group } = await setup();
  const outsider = await register(node.url, uname('x'));
  const raw = await rawSocket(node.url);
  raw.send({ type: 'hello', v: 1, token: outsider.accessToken, cursors: { [group.id]: 0 } });
  await raw.next((f) => f.type === 'welcome');
  const f = await raw.next((x) => x.type === 'conversation' || x.type === 'sync.page');
  assert.deepEqual(f, { type: 'conversation', change: 'removed', conversationId: group.id });
  raw.ws.close();
});

test('a cursor past the end restarts at the end: sync.done says where, then live continues', async () => {
  const { b, da, group } = await setup();
  for (let i = 0; i < 3; i++) await da.client.send(group.id, `only ${i}`);
  const raw = await rawSocket(node.url);
  raw.send({ type: 'hello', v: 1, token: b.accessToken, cursors: { [group.id]: 1000 } });
  const done = await raw.next((f) => f.type === 'sync.done');
  assert.deepEqual(done, { type: 'sync.done', conversationId: group.id, seq: 3 });
  const sdk = await node.dev(b, { cursors: { [group.id]: 1000 } });
  const next = await da.client.send(group.id, 'number four');
  const f = await raw.next((x) => x.type === 'message');
  assert.equal(f.type === 'message' && f.message.seq, 4);
  const seen = await sdk.waitFor(group.id, 1);
  assert.equal(seen[0]!.messageId, next.messageId, 'the SDK follows the server down to seq 3, then takes 4');
  raw.ws.close();
});
