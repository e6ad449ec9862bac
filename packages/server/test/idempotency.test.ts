// Issue "chat core", test 3: one client id sent 3 times, also across a reconnect, gives
// exactly one message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useNode } from './clients.js';
import { http, register, uname } from './helpers.js';
import { rawSocket } from './ws-raw.js';

const node = useNode();

async function pair() {
  const a = await register(node.url, uname('i'));
  const b = await register(node.url, uname('i'));
  const da = await node.dev(a);
  const conv = await da.api.direct(b.user.username);
  return { a, b, da, conv };
}

const count = async (token: string, cid: string) => (await http(node.url, 'GET', `/v1/conversations/${cid}/messages?after=0`, undefined, token)).body.messages.length as number;

test('the same client id three times in one burst: one message, three identical acks', async () => {
  const { a, conv } = await pair();
  const raw = await rawSocket(node.url);
  raw.send({ type: 'hello', v: 1, token: a.accessToken });
  await raw.next((f) => f.type === 'welcome');
  for (const id of ['r1', 'r2', 'r3']) raw.send({ type: 'send', id, conversationId: conv.id, clientId: 'same-1', text: 'once' });
  const acks = await Promise.all(['r1', 'r2', 'r3'].map((id) => raw.next((f) => f.type === 'ack' && f.id === id)));
  const msgs = acks.map((f) => (f.type === 'ack' ? f : assert.fail()));
  assert.deepEqual(msgs.map((f) => f.duplicate), [false, true, true]);
  assert.equal(new Set(msgs.map((f) => f.message.messageId)).size, 1);
  assert.equal(new Set(msgs.map((f) => f.message.seq)).size, 1);
  assert.equal(await count(a.accessToken, conv.id), 1);
  raw.ws.close();
});

test('the same client id across a reconnect and over REST: one message', async () => {
  const { a, da, conv } = await pair();
  const first = await da.client.send(conv.id, 'hello', { clientId: 'same-2' });
  da.client.reconnect();
  await new Promise<void>((resolve) => da.client.on('welcome', () => resolve()));
  const second = await da.client.send(conv.id, 'hello', { clientId: 'same-2' });
  const third = await http(node.url, 'POST', `/v1/conversations/${conv.id}/messages`, { clientId: 'same-2', text: 'hello' }, a.accessToken);
  assert.equal(third.status, 200);
  assert.equal(third.body.duplicate, true);
  assert.equal(second.messageId, first.messageId);
  assert.equal(third.body.message.messageId, first.messageId);
  assert.equal(await count(a.accessToken, conv.id), 1);
});

test('sends cut off by a dropped connection are resent with their ids: each lands once', async () => {
  const { a, da, conv } = await pair();
  // Fire 50 sends and kill the socket at once: some were committed, some not; the SDK resends
  // every unacked one after reconnecting, with the same client ids.
  const pending = Array.from({ length: 50 }, (_, i) => da.client.send(conv.id, `m${i}`, { clientId: `drop-${i}` }));
  da.client.reconnect();
  const acked = await Promise.all(pending);
  assert.deepEqual(acked.map((m) => m.clientId), Array.from({ length: 50 }, (_, i) => `drop-${i}`));
  assert.equal(new Set(acked.map((m) => m.seq)).size, 50);
  assert.equal(await count(a.accessToken, conv.id), 50);
});

test('a client id reused for a different operation is refused', async () => {
  const { a, da, conv } = await pair();
  const m = await da.client.send(conv.id, 'x', { clientId: 'op-1' });
  const r = await http(node.url, 'DELETE', `/v1/conversations/${conv.id}/messages/${m.messageId}`, { clientId: 'op-1' }, a.accessToken);
  assert.equal(r.status, 409);
  assert.equal(r.body.error.code, 'client_id_reused');
  assert.equal(await count(a.accessToken, conv.id), 1);
});
