// Issue "chat core", test 1: 1:1 and a group of 5 where one user has 3 devices: every device
// sees the same messages in the same order, over real sockets and a real SQLite file.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfabApi } from '@confab/sdk';
import type { Session } from '@confab/protocol';
import { login, seqs, useNode } from './clients.js';
import { register, startNode, uname } from './helpers.js';

describe('chat: 1:1 and groups, all devices converge', () => {
  const node = useNode();
  const dev = (_url: string, session: Session) => node.dev(session);

  test('two users chat 1:1 both ways, live, in one order', async () => {
    const alice = await register(node.url, uname('alice'));
    const bob = await register(node.url, uname('bob'));
    const a = await dev(node.url, alice);
    const b = await dev(node.url, bob);
    const conv = await a.api.direct(bob.user.username);
    const again = await b.api.direct(alice.user.username);
    assert.equal(again.id, conv.id, 'exactly one direct conversation per pair');
    const texts: string[] = [];
    for (let i = 0; i < 10; i++) {
      const from = i % 2 === 0 ? a : b;
      const m = await from.client.send(conv.id, `turn ${i} ✓ 😀`);
      texts.push(m.text);
      assert.equal(m.seq, i + 1);
    }
    const seenA = await a.waitFor(conv.id, 10);
    const seenB = await b.waitFor(conv.id, 10);
    assert.deepEqual(seqs(seenA), Array.from({ length: 10 }, (_, i) => i + 1));
    assert.deepEqual(seenA.map((m) => m.messageId), seenB.map((m) => m.messageId));
    assert.deepEqual(seenB.map((m) => m.text), texts);
    assert.equal(seenB[1]!.senderUsername, bob.user.username);
    const list = await b.api.conversations();
    assert.equal(list.conversations[0]?.id, conv.id);
    assert.equal(list.conversations[0]?.peer?.username, alice.user.username);
    assert.equal(list.conversations[0]?.lastMessage?.seq, 10);
    assert.equal(list.conversations[0]?.unread, 0, 'bob answered last: sending marks the chat read');
    assert.equal((await a.api.conversations()).conversations[0]?.unread, 1, "bob's last message is unread for alice");
  });

  test('a group of 5 where one user has 3 devices: 7 devices, one order', async () => {
    const users = await Promise.all(Array.from({ length: 5 }, (_, i) => register(node.url, uname(`g${i}`))));
    const owner = users[0]!;
    const ownerDev = await dev(node.url, owner);
    const group = await ownerDev.api.createGroup('five', users.slice(1).map((u) => u.user.username));
    assert.equal(group.memberCount, 5);
    assert.equal(group.role, 'owner');
    // users[1] has three devices: three logins, three device ids.
    const multi = [await dev(node.url, users[1]!), await dev(node.url, await login(node.url, users[1]!.user.username)), await dev(node.url, await login(node.url, users[1]!.user.username))];
    assert.equal(new Set(multi.map((d) => d.session.deviceId)).size, 3);
    const others = await Promise.all(users.slice(2).map((u) => dev(node.url, u)));
    const all = [ownerDev, ...multi, ...others];
    // Everyone sends concurrently, some from each of the three devices.
    const senders = [ownerDev, ...multi, ...others];
    await Promise.all(senders.map(async (d, k) => {
      for (let i = 0; i < 8; i++) await d.client.send(group.id, `d${k} m${i}`);
    }));
    const total = senders.length * 8;
    const views = await Promise.all(all.map((d) => d.waitFor(group.id, total)));
    const reference = views[0]!.map((m) => m.messageId);
    assert.deepEqual(seqs(views[0]!), Array.from({ length: total }, (_, i) => i + 1));
    for (const v of views) {
      assert.equal(v.length, total, 'no duplicates');
      assert.deepEqual(v.map((m) => m.messageId), reference, 'same order on every device');
    }
    // A device that sent also saw its own messages in the stream, and its siblings saw them.
    assert.ok(multi[2]!.of(group.id).some((m) => m.text === 'd2 m0' && m.sender === users[1]!.user.id));
    // History over REST is the same log.
    const page = await ownerDev.api.history(group.id, { after: 0, limit: 200 });
    assert.deepEqual(page.messages.map((m) => m.messageId), reference);
  });

  test('edits and deletes are entries every device applies the same way', async () => {
    const u1 = await register(node.url, uname('e'));
    const u2 = await register(node.url, uname('e'));
    const d1 = await dev(node.url, u1);
    const d2 = await dev(node.url, u2);
    const c = await d1.api.direct(u2.user.username);
    const m = await d1.client.send(c.id, 'helo');
    const e = await d1.client.edit(c.id, m.messageId, 'hello');
    assert.equal(e.kind, 'edit');
    assert.deepEqual(e.target, { messageId: m.messageId, seq: m.seq });
    const del = await d1.client.delete(c.id, m.messageId);
    assert.equal(del.kind, 'delete');
    const seen = await d2.waitFor(c.id, 3);
    assert.deepEqual(seen.map((x) => x.kind), ['message', 'edit', 'delete']);
    const page = await d2.api.history(c.id);
    const tomb = page.messages.find((x) => x.messageId === m.messageId)!;
    assert.equal(tomb.text, '', 'a tombstone keeps no text');
    assert.ok(tomb.deletedAt);
    assert.equal(page.messages.find((x) => x.kind === 'edit')?.text, '', 'nor does its edit entry');
    await assert.rejects(d2.client.edit(c.id, m.messageId, 'not mine'), { code: 'forbidden' });
    await assert.rejects(d1.client.edit(c.id, m.messageId, 'again'), { code: 'message_deleted' });
  });

  test('group administration: add, remove, leave, roles', async () => {
    const [o, a, b, c] = await Promise.all(Array.from({ length: 4 }, () => register(node.url, uname('adm'))));
    const od = await dev(node.url, o!);
    const bd = await dev(node.url, b!);
    const added = new Promise((resolve) => bd.client.on('conversation', (ch) => { if (ch.change === 'added') resolve(ch); }));
    const g = await od.api.createGroup('admin', [a!.user.username]);
    let members = await od.api.addMembers(g.id, [b!.user.username]);
    assert.equal(members.length, 3);
    await added;
    const removed = new Promise((resolve) => bd.client.on('conversation', (ch) => { if (ch.change === 'removed' && ch.conversationId === g.id) resolve(ch); }));
    await assert.rejects(bd.api.addMembers(g.id, [c!.user.username]), { code: 'forbidden' });
    members = await od.api.setRole(g.id, b!.user.id, 'admin');
    assert.equal(members.find((m) => m.userId === b!.user.id)?.role, 'admin');
    await bd.api.addMembers(g.id, [c!.user.username]);
    await assert.rejects(bd.api.removeMember(g.id, o!.user.id), { code: 'forbidden' });
    await od.api.removeMember(g.id, b!.user.id);
    await removed;
    await assert.rejects(bd.client.send(g.id, 'after removal'), { code: 'forbidden' });
    // The owner leaves: the oldest remaining member becomes owner.
    await od.api.leave(g.id);
    const rest = await new ConfabApi({ baseUrl: node.url, token: a!.accessToken }).members(g.id);
    assert.equal(rest.filter((m) => m.role === 'owner').length, 1);
    assert.ok(!rest.some((m) => m.userId === o!.user.id));
  });

  test('groups stop at the configured size', async () => {
    const small = await startNode({ limits: { maxGroupMembers: 3 } });
    try {
      const us = await Promise.all(Array.from({ length: 4 }, () => register(small.url, uname('s'))));
      const api = new ConfabApi({ baseUrl: small.url, token: us[0]!.accessToken });
      await assert.rejects(api.createGroup('too big', us.slice(1).map((u) => u.user.username)), { code: 'conversation_full' });
      const g = await api.createGroup('fits', [us[1]!.user.username, us[2]!.user.username]);
      await assert.rejects(api.addMembers(g.id, [us[3]!.user.username]), { code: 'conversation_full' });
      assert.equal((await api.members(g.id)).length, 3);
    } finally {
      await small.close();
    }
  });
});
