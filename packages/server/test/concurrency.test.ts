// Issue "chat core", test 2: 20 concurrent senders in one group, 200 messages each: every
// member ends with 4,000 messages, seq 1..4000 without gap, each sender's in its send order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seqs, useNode, type Device } from './clients.js';
import { register, uname } from './helpers.js';

const SENDERS = 20;
const EACH = 200;
const node = useNode({ limits: { sendsPerSecond: 10_000, sendBurst: 10_000, userSendsPerSecond: 10_000, userSendBurst: 10_000 } });
const devices: Device[] = [];

test('20 senders x 200 messages: 4,000 per member, gap-free, per-sender order kept', async () => {
  const users = await Promise.all(Array.from({ length: SENDERS }, (_, i) => register(node.url, uname(`c${i}`))));
  const owner = users[0]!;
  for (const u of users) devices.push(await node.dev(u));
  const group = await devices[0]!.api.createGroup('busy', users.slice(1).map((u) => u.user.username));
  // Every sender pipelines its 200 sends (the SDK keeps a window in flight), all at once.
  const acked = await Promise.all(devices.map((d, k) => Promise.all(Array.from({ length: EACH }, (_, i) => d.client.send(group.id, `${k}:${i}`)))));
  const total = SENDERS * EACH;
  for (const [k, list] of acked.entries()) {
    const s = seqs(list);
    assert.ok(s.every((x, i) => i === 0 || x > s[i - 1]!), `sender ${k}: acked seqs increase in send order`);
  }
  const views = await Promise.all(devices.map((d) => d.waitFor(group.id, total, 60_000)));
  const expected = Array.from({ length: total }, (_, i) => i + 1);
  for (const v of views) {
    assert.deepEqual(seqs(v), expected, 'seq 1..4000, no gap, no duplicate');
    const bySender = new Map<string, number[]>();
    for (const m of v) {
      const [k, i] = m.text.split(':').map(Number) as [number, number];
      const list = bySender.get(String(k)) ?? [];
      list.push(i);
      bySender.set(String(k), list);
    }
    assert.equal(bySender.size, SENDERS);
    for (const list of bySender.values()) assert.deepEqual(list, Array.from({ length: EACH }, (_, i) => i), "each sender's messages in its send order");
  }
  assert.deepEqual(views[5]!.map((m) => m.messageId), views[0]!.map((m) => m.messageId));
  const page = await devices[0]!.api.history(group.id, { before: total + 1, limit: 1 });
  assert.equal(page.messages[0]?.seq, total);
  assert.equal(owner.user.id, devices[0]!.session.user.id);
});
