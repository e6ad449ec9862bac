// The store port's contract suite: every adapter runs exactly these tests through a factory.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { asConversationId, type ConversationId, type UserId } from '@confab/protocol';
import { newConversationId, newDeviceId, newMessageId, newUserId } from '../src/ids.js';
import type { AppendRequest, Store } from '../src/ports/store.js';

export function storeContract(name: string, factory: () => Promise<Store>): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    const now = Date.now();
    const users: UserId[] = [];
    let conv: ConversationId;

    const msg = (sender: UserId, clientId: string, text = clientId, c = conv): AppendRequest => ({
      conversationId: c, kind: 'message', messageId: newMessageId(), senderId: sender, clientId, text, createdAt: Date.now(),
    });

    before(async () => {
      store = await factory();
      for (let i = 0; i < 4; i++) {
        const id = newUserId();
        assert.equal(await store.createUser({ id, username: `c${i}${id.slice(-8)}`, passwordHash: 'x', createdAt: now }), true);
        users.push(id);
      }
      conv = (await store.createGroup({ id: newConversationId(), name: 'g', ownerId: users[0]!, memberIds: users.slice(0, 3), createdAt: now })).id;
    });
    after(async () => { await store.close(); });

    test('usernames are unique', async () => {
      const u = await store.userById(users[0]!);
      assert.ok(u);
      assert.equal(await store.createUser({ id: newUserId(), username: u.username, passwordHash: 'y', createdAt: now }), false);
      assert.equal((await store.userByUsername(u.username))?.id, users[0]);
    });

    test('seq is gap-free and strictly increasing across batches', async () => {
      const batches = await Promise.all(Array.from({ length: 10 }, (_, b) => store.append(Array.from({ length: 20 }, (_, i) => msg(users[i % 3]!, `gap-${b}-${i}`)))));
      const seqs = batches.flat().map((r) => (r.ok ? r.message.seq : -1)).sort((a, b) => a - b);
      assert.deepEqual(seqs, Array.from({ length: 200 }, (_, i) => i + 1));
      const all = await store.readAfter(conv, 0, 1000);
      assert.deepEqual(all.map((m) => m.seq), seqs);
      assert.equal((await store.conversation(conv))?.lastSeq, 200);
    });

    test('a repeated client id returns the original and allocates no seq', async () => {
      const [first] = await store.append([msg(users[0]!, 'idem-1', 'once')]);
      const [again, third] = await store.append([msg(users[0]!, 'idem-1', 'twice'), msg(users[0]!, 'idem-1', 'thrice')]);
      assert.ok(first?.ok && again?.ok && third?.ok);
      assert.equal(first.duplicate, false);
      assert.equal(again.duplicate, true);
      assert.equal(again.message.seq, first.message.seq);
      assert.equal(again.message.text, 'once');
      assert.equal(third.message.messageId, first.message.messageId);
      // The same client id from another sender is a different message.
      const [other] = await store.append([msg(users[1]!, 'idem-1')]);
      assert.ok(other?.ok && !other.duplicate);
      assert.equal(other.message.seq, first.message.seq + 1);
    });

    test('an append returns each entry as the log holds it: a message, an edit, a delete', async () => {
      const stored = async (seq: number) => (await store.readAfter(conv, seq - 1, 1))[0];
      const [m] = await store.append([msg(users[1]!, 'as-1', 'as stored')]);
      assert.ok(m?.ok);
      assert.deepEqual(m.message, await stored(m.message.seq));
      const [e] = await store.append([{ ...msg(users[1]!, 'as-2', 'as stored, edited'), kind: 'edit', targetId: m.message.messageId as never }]);
      assert.ok(e?.ok);
      assert.deepEqual(e.message, await stored(e.message.seq));
      const [d] = await store.append([{ ...msg(users[1]!, 'as-3', ''), kind: 'delete', targetId: m.message.messageId as never }]);
      assert.ok(d?.ok);
      assert.deepEqual(d.message, await stored(d.message.seq));
    });

    test('non-members cannot append; nothing is written', async () => {
      const before = (await store.conversation(conv))!.lastSeq;
      const [r] = await store.append([msg(users[3]!, 'outsider')]);
      assert.deepEqual(r, { ok: false, reason: 'not_member' });
      assert.equal((await store.conversation(conv))!.lastSeq, before);
    });

    test('membership before idempotency: a removed member resending an old client id is refused as not_member, and learns nothing', async () => {
      const c = (await store.createGroup({ id: newConversationId(), name: 'left', ownerId: users[0]!, memberIds: users.slice(0, 2), createdAt: now })).id;
      const [first] = await store.append([msg(users[1]!, 'left-1', 'before leaving', c)]);
      assert.ok(first?.ok);
      assert.equal(await store.removeMember(c, users[1]!), true);
      const before = (await store.conversation(c))!.lastSeq;
      const [again] = await store.append([msg(users[1]!, 'left-1', 'before leaving', c)]);
      assert.deepEqual(again, { ok: false, reason: 'not_member' });
      const [edit] = await store.append([{ ...msg(users[1]!, 'left-2', 'x', c), kind: 'edit', targetId: first.message.messageId as never }]);
      assert.deepEqual(edit, { ok: false, reason: 'not_member' });
      assert.equal((await store.conversation(c))!.lastSeq, before, 'nothing was written');
    });

    test('edit and delete are entries; delete leaves a tombstone and blanks edits', async () => {
      const [m] = await store.append([msg(users[0]!, 'ed-1', 'original')]);
      assert.ok(m?.ok);
      const target = m.message;
      const edit: AppendRequest = { ...msg(users[0]!, 'ed-2', 'changed'), kind: 'edit', targetId: target.messageId as never };
      const [e] = await store.append([edit]);
      assert.ok(e?.ok);
      assert.equal(e.message.kind, 'edit');
      assert.deepEqual(e.message.target, { messageId: target.messageId, seq: target.seq });
      assert.equal(e.message.seq, target.seq + 1);
      const edited = await store.message(conv, target.messageId as never);
      assert.equal(edited?.text, 'changed');
      assert.ok(edited?.editedAt);
      const [d] = await store.append([{ ...msg(users[0]!, 'ed-3', ''), kind: 'delete', targetId: target.messageId as never }]);
      assert.ok(d?.ok);
      const gone = await store.message(conv, target.messageId as never);
      assert.equal(gone?.text, '');
      assert.ok(gone?.deletedAt);
      const editRow = (await store.readAfter(conv, e.message.seq - 1, 1))[0];
      assert.equal(editRow?.text, '', 'the edit entry no longer carries the deleted text');
      const [again] = await store.append([{ ...msg(users[0]!, 'ed-4', 'x'), kind: 'edit', targetId: target.messageId as never }]);
      assert.deepEqual(again, { ok: false, reason: 'message_deleted' });
      const [missing] = await store.append([{ ...msg(users[0]!, 'ed-5', 'x'), kind: 'edit', targetId: newMessageId() }]);
      assert.deepEqual(missing, { ok: false, reason: 'message_not_found' });
      const [reused] = await store.append([{ ...msg(users[0]!, 'ed-1', 'x'), kind: 'delete', targetId: target.messageId as never }]);
      assert.deepEqual(reused, { ok: false, reason: 'client_id_reused' });
    });

    test('readBefore and readAfter page in seq order', async () => {
      const last = (await store.conversation(conv))!.lastSeq;
      const page = await store.readBefore(conv, last + 1, 5);
      assert.deepEqual(page.map((m) => m.seq), [last - 4, last - 3, last - 2, last - 1, last]);
      const fwd = await store.readAfter(conv, 10, 3);
      assert.deepEqual(fwd.map((m) => m.seq), [11, 12, 13]);
      assert.deepEqual(await store.readAfter(conv, last, 10), []);
    });

    test('direct conversations are one per pair, whichever side creates them', async () => {
      const a = await store.createDirect(newConversationId(), users[0]!, users[3]!, now);
      const b = await store.createDirect(newConversationId(), users[3]!, users[0]!, now);
      assert.equal(a.id, b.id);
      assert.equal(a.kind, 'direct');
      assert.deepEqual((await store.memberIds(a.id)).sort(), [users[0], users[3]].sort());
      const view = await store.viewForUser(a.id, users[0]!);
      assert.equal(view?.peer?.id, users[3]);
    });

    test('members: add respects the maximum, remove, roles', async () => {
      const g = (await store.createGroup({ id: newConversationId(), name: 'small', ownerId: users[0]!, memberIds: [users[0]!], createdAt: now })).id;
      assert.equal(await store.addMembers(g, [users[1]!, users[2]!, users[3]!], now, 3), 'full');
      assert.equal((await store.conversation(g))!.memberCount, 1);
      assert.deepEqual(await store.addMembers(g, [users[1]!, users[1]!, users[0]!], now, 3), [users[1]]);
      assert.equal((await store.conversation(g))!.memberCount, 2);
      await store.setRole(g, users[1]!, 'admin');
      assert.equal((await store.member(g, users[1]!))?.role, 'admin');
      assert.equal(await store.removeMember(g, users[1]!), true);
      assert.equal(await store.removeMember(g, users[1]!), false);
      assert.equal((await store.conversation(g))!.memberCount, 1);
    });

    test('read cursors only move forward; unread skips own and deleted messages', async () => {
      const c = (await store.createGroup({ id: newConversationId(), name: 'reads', ownerId: users[0]!, memberIds: users.slice(0, 2), createdAt: now })).id;
      const rs = await store.append([msg(users[0]!, 'r1', 'a', c), msg(users[0]!, 'r2', 'b', c), msg(users[0]!, 'r3', 'c', c), msg(users[0]!, 'r4', 'd', c)]);
      assert.equal((await store.viewForUser(c, users[1]!))?.unread, 4);
      assert.equal((await store.viewForUser(c, users[0]!))?.unread, 0, 'own messages are never unread');
      const r2 = rs[1]!;
      assert.ok(r2.ok);
      await store.append([{ ...msg(users[0]!, 'r5', '', c), kind: 'delete', targetId: r2.message.messageId as never }]);
      assert.equal((await store.viewForUser(c, users[1]!))?.unread, 3, 'a deleted unread message no longer counts');
      assert.deepEqual(await store.advanceReadCursor(c, users[1]!, 1), { readSeq: 1, unread: 2 });
      assert.deepEqual(await store.advanceReadCursor(c, users[1]!, 0), { readSeq: 1, unread: 2 }, 'a lower cursor is ignored');
      assert.deepEqual(await store.unreadCounts(users[1]!, new Map([[c, 4]])), new Map([[c, { readSeq: 1, unread: 2 }]]));
      assert.deepEqual(await store.unreadCounts(users[1]!, new Map([[c, 2]])), new Map([[c, { readSeq: 1, unread: 0 }]]), 'seq 2 was deleted: nothing counts up to it');
      assert.deepEqual(await store.unreadCounts(users[1]!, new Map([[c, 3]])), new Map([[c, { readSeq: 1, unread: 1 }]]), 'counted only up to the seq asked');
      // Sending marks the conversation read for the sender.
      const [mine] = await store.append([msg(users[1]!, 'r6', 'reply', c)]);
      assert.ok(mine?.ok);
      assert.deepEqual(await store.advanceReadCursor(c, users[1]!, 0), { readSeq: mine.message.seq, unread: 0 });
      const list = await store.listForUser(users[1]!);
      assert.equal(list[0]?.id, c, 'most recent conversation first');
      assert.equal(list[0]?.lastMessage?.clientId, 'r6');
      assert.deepEqual(await store.unreadCounts(users[3]!, new Map([[c, 99]])), new Map(), 'no counts for non-members');
    });

    test('delivered cursors: monotonic, at least the read cursor, aggregated as the minimum', async () => {
      const c = (await store.createGroup({ id: newConversationId(), name: 'receipts', ownerId: users[0]!, memberIds: users.slice(0, 3), createdAt: now })).id;
      const aggregate = async (id: ConversationId) => { const { delivered, read } = await store.receiptAggregate(id); return { delivered, read }; };
      await store.append([msg(users[0]!, 'd1', 'a', c), msg(users[0]!, 'd2', 'b', c), msg(users[0]!, 'd3', 'c', c)]);
      assert.deepEqual(await aggregate(c), { delivered: 0, read: 0 });
      assert.equal(await store.advanceDeliveredCursor(c, users[1]!, 2), true);
      assert.equal(await store.advanceDeliveredCursor(c, users[1]!, 1), false, 'never moves back');
      assert.equal(await store.advanceDeliveredCursor(c, users[3]!, 3), false, 'not a member: nothing stored');
      assert.deepEqual(await aggregate(c), { delivered: 0, read: 0 }, 'users[2] has nothing yet');
      await store.advanceReadCursor(c, users[2]!, 3);
      assert.deepEqual(await aggregate(c), { delivered: 2, read: 0 }, 'read implies delivered');
      await store.advanceReadCursor(c, users[1]!, 3);
      assert.deepEqual(await aggregate(c), { delivered: 3, read: 3 }, "the sender's cursors moved with its messages");
      const members = await store.members(c);
      assert.deepEqual(members.map((m) => [m.deliveredSeq, m.readSeq]), [[3, 3], [3, 3], [3, 3]]);
    });

    test('membership version: raised by every add and remove, returned by each append, read with the members', async () => {
      const c = (await store.createGroup({ id: newConversationId(), name: 'versions', ownerId: users[0]!, memberIds: users.slice(0, 2), createdAt: now })).id;
      const v0 = await store.memberSet(c);
      assert.deepEqual([...v0.userIds].sort(), users.slice(0, 2).sort());
      const [first] = await store.append([msg(users[0]!, 'mv-1', 'a', c)]);
      assert.ok(first?.ok);
      assert.equal(first.membersVersion, v0.version);

      assert.deepEqual(await store.addMembers(c, [users[2]!], now, 10), [users[2]]);
      const v1 = await store.memberSet(c);
      assert.ok(v1.version > v0.version, 'an addition raises it');
      assert.deepEqual([...v1.userIds].sort(), users.slice(0, 3).sort());
      const [second, again] = await store.append([msg(users[2]!, 'mv-2', 'b', c), msg(users[0]!, 'mv-1', 'a', c)]);
      assert.ok(second?.ok && again?.ok);
      assert.equal(second.membersVersion, v1.version);
      assert.equal(again.duplicate, true);
      assert.equal(again.membersVersion, v1.version, 'a duplicate reports the version now');

      assert.deepEqual(await store.addMembers(c, [users[2]!], now, 10), [], 'already a member');
      assert.equal((await store.memberSet(c)).version, v1.version, 'nothing changed: same version');

      assert.equal(await store.removeMember(c, users[1]!), true);
      const v2 = await store.memberSet(c);
      assert.ok(v2.version > v1.version, 'a removal raises it');
      assert.deepEqual([...v2.userIds].sort(), [users[0]!, users[2]!].sort());
      const [third] = await store.append([msg(users[0]!, 'mv-3', 'c', c)]);
      assert.ok(third?.ok);
      assert.equal(third.membersVersion, v2.version);
      assert.equal((await store.receiptAggregate(c)).membersVersion, v2.version);
      const [refused] = await store.append([msg(users[1]!, 'mv-4', 'd', c)]);
      assert.deepEqual(refused, { ok: false, reason: 'not_member' });

      assert.deepEqual(await store.memberSet(asConversationId(newConversationId())), { version: 0, userIds: [] });
    });

    test('who shares a conversation with whom; last seen and its privacy', async () => {
      // users[1] and users[3] never shared one (users[1] left the only group they could have).
      assert.deepEqual((await store.sharedWith(users[1]!, [users[2]!, users[3]!, users[1]!])).sort(), [users[1], users[2]].sort());
      await store.setLastSeen([users[2]!, users[3]!], 12345);
      assert.equal((await store.userById(users[3]!))?.lastSeenAt, 12345);
      await store.setHideLastSeen(users[2]!, true);
      const u = await store.userById(users[2]!);
      assert.equal(u?.lastSeenAt, 12345);
      assert.equal(u?.hideLastSeen, true);
    });

    test('refresh tokens rotate once; reuse revokes the device', async () => {
      const deviceId = newDeviceId();
      await store.createDevice({ id: deviceId, userId: users[0]!, name: null, createdAt: now, revokedAt: null }, { tokenHash: 'h1', deviceId, userId: users[0]!, createdAt: now, expiresAt: now + 60_000 });
      assert.deepEqual(await store.rotateRefreshToken('h1', { tokenHash: 'h2', createdAt: now, expiresAt: now + 60_000 }, now), { status: 'ok', userId: users[0], deviceId });
      assert.deepEqual(await store.rotateRefreshToken('h1', { tokenHash: 'h3', createdAt: now, expiresAt: now + 60_000 }, now), { status: 'reused', deviceId });
      assert.deepEqual(await store.rotateRefreshToken('h2', { tokenHash: 'h4', createdAt: now, expiresAt: now + 60_000 }, now), { status: 'invalid' }, 'the whole device is logged out');
      assert.ok((await store.device(deviceId))?.revokedAt);
      assert.deepEqual(await store.rotateRefreshToken('nope', { tokenHash: 'h5', createdAt: now, expiresAt: now }, now), { status: 'invalid' });
    });

    test('unknown conversation reads are empty, not errors', async () => {
      const ghost = asConversationId(newConversationId());
      assert.equal(await store.conversation(ghost), null);
      assert.deepEqual(await store.readAfter(ghost, 0, 10), []);
      await store.ping();
    });
  });
}
