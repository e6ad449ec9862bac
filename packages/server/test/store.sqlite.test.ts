// The store contract against the embedded SQLite adapter (a real file, WAL), and what only this
// adapter does: WAL checkpoints on a worker thread, and its schema migrations on a database that holds data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ConversationId, UserId } from '@confab/protocol';
import type { CheckpointReport } from '../src/adapters/sqlite/checkpoint-pass.js';
import { Checkpointer } from '../src/adapters/sqlite/checkpointer.js';
import { MIGRATIONS } from '../src/adapters/sqlite/migrations.js';
import { SqliteStore, type SqliteStoreOptions } from '../src/adapters/sqlite/sqlite-store.js';
import { newConversationId, newMessageId, newUserId } from '../src/ids.js';
import type { AppendRequest } from '../src/ports/store.js';
import { tempDir } from './helpers.js';
import { storeContract } from './store-contract.js';

storeContract('sqlite', () => Promise.resolve(new SqliteStore({ path: join(tempDir(), 'confab.db') })));

const sizeOf = (file: string) => (existsSync(file) ? statSync(file).size : 0);

/** A store on a fresh file with one group of 3, and a way to append messages to it. */
async function groupStore(opts: Omit<SqliteStoreOptions, 'path'> = {}) {
  const path = join(tempDir(), 'confab.db');
  const store = new SqliteStore({ path, ...opts });
  const users: UserId[] = [];
  for (let i = 0; i < 3; i++) {
    const id = newUserId();
    await store.createUser({ id, username: `u${i}${id.slice(-8)}`, passwordHash: 'x', createdAt: Date.now() });
    users.push(id);
  }
  const conv: ConversationId = (await store.createGroup({ id: newConversationId(), name: 'g', ownerId: users[0]!, memberIds: users, createdAt: Date.now() })).id;
  let n = 0;
  const batch = (size: number): AppendRequest[] => Array.from({ length: size }, () => {
    n++;
    return { conversationId: conv, kind: 'message', messageId: newMessageId(), senderId: users[n % 3]!, clientId: `m${n}`, text: `message ${n} `.repeat(20), createdAt: Date.now() };
  });
  return { path, store, batch, conv };
}

async function waitFor(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !ok();) {
    if (Date.now() > end) assert.fail(`waited ${ms} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('sqlite: the WAL is copied into the database file by the checkpoint thread, far below the inline threshold of 1,000 pages', async () => {
  const reports: CheckpointReport[] = [];
  const { path, store, batch, conv } = await groupStore({ onCheckpoint: (r) => reports.push(r) });
  try {
    await waitFor('the setup to be checkpointed', () => reports.some((r) => r.copiedFrames === r.walFrames));
    const before = sizeOf(path);
    reports.length = 0;
    for (let i = 0; i < 20; i++) await store.append(batch(10)); // a few hundred pages at most
    await waitFor('a checkpoint of the appends', () => reports.some((r) => r.copiedFrames === r.walFrames));
    assert.ok(reports.every((r) => r.walFrames < 1000), `the WAL stayed below 1,000 pages: ${JSON.stringify(reports)}`);
    assert.ok(sizeOf(path) > before, `the database file grew (${before} -> ${sizeOf(path)} bytes): the pages are in it`);
    assert.equal((await store.readAfter(conv, 0, 1000)).length, 200);
  } finally {
    await store.close();
  }
});

test('sqlite: under continuous appends the WAL starts over instead of growing, and close() leaves no WAL behind', async () => {
  const reports: CheckpointReport[] = [];
  const { path, store, batch } = await groupStore({ onCheckpoint: (r) => reports.push(r) });
  const wal = `${path}-wal`;
  const seen: CheckpointReport[] = [];
  let maxWal = 0;
  // A WAL frame on disk: the page and a 24-byte header.
  const frameBytes = 4096 + 24;
  let restarts = 0;
  let afterNodePass = 0; // restarts that the node's own pass made possible
  let last: CheckpointReport | undefined;
  try {
    // Back-to-back commits, as under load, until the WAL has started over three times (at most
    // 60 s): the checkpoint thread runs between them.
    for (const end = Date.now() + 60_000; restarts < 3 && Date.now() < end;) {
      await store.append(batch(16));
      maxWal = Math.max(maxWal, sizeOf(wal));
      for (const r of reports.splice(0)) {
        if (last && r.walFrames < last.walFrames) {
          restarts++;
          if (last.thread === 'node') afterNodePass++;
        }
        last = r;
        seen.push(r);
      }
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(restarts, 3, `the WAL started over again and again (frames per pass: ${seen.map((r) => `${r.thread} ${r.walFrames}`).join(', ')})`);
    // Without the node's pass, the WAL would start over only at the node connection's own threshold.
    assert.ok(afterNodePass >= 1, `the WAL started over after the node's own pass (${afterNodePass} of ${restarts} times)`);
    assert.ok(maxWal < 10_000 * frameBytes, `the WAL never reached the node connection's own checkpoint threshold (max ${maxWal} bytes)`);
  } finally {
    await store.close();
  }
  assert.equal(existsSync(wal), false, 'the last connection to close copied the WAL and removed it');
});

test('sqlite: inline checkpoints (checkpoints: inline) run no thread and report nothing', async () => {
  const reports: CheckpointReport[] = [];
  const { path, store, batch } = await groupStore({ checkpoints: 'inline', onCheckpoint: (r) => reports.push(r) });
  try {
    const before = sizeOf(path);
    for (let i = 0; i < 20; i++) await store.append(batch(10));
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(reports, []);
    assert.equal(sizeOf(path), before, 'below 1,000 pages, nothing was copied into the database file yet');
  } finally {
    await store.close();
  }
});

test('sqlite: a checkpoint thread that cannot open the database reports its failure (on which the store checkpoints inline again)', async () => {
  const failure = await new Promise<Error>((resolve) => {
    new Checkpointer(join(tempDir(), 'no-such-dir', 'confab.db'), { intervalMs: 50, onFailure: resolve });
  });
  assert.match(failure.message, /directory does not exist|unable to open/);
});

/** A database file left by a node of schema version 3 (before compact message keys), written with that version's SQL. */
function version3Database(rows: (db: Database.Database) => void): string {
  const path = join(tempDir(), 'confab.db');
  const db = new Database(path);
  db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  for (const m of MIGRATIONS.filter((x) => x.version <= 3)) {
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, 1);
  }
  rows(db);
  db.close();
  return path;
}

test('sqlite: migration 4 (compact message keys) keeps every message of a version-3 database, edits, deletes, client ids and cursors included', async () => {
  const [ann, bob, cat] = [newUserId(), newUserId(), newUserId()];
  const [group, direct] = [newConversationId(), newConversationId()];
  const ids = Array.from({ length: 5 }, () => newMessageId());
  const path = version3Database((db) => {
    const user = db.prepare('INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)');
    user.run(ann, 'ann', 'h', 1); user.run(bob, 'bob', 'h', 2); user.run(cat, 'cat', 'h', 3);
    db.prepare(`INSERT INTO conversations (id, kind, name, direct_key, created_at, updated_at, last_seq, last_message_seq, member_count) VALUES
      (?, 'group', 'g', NULL, 10, 14, 4, 2, 3), (?, 'direct', NULL, ?, 11, 15, 1, 1, 2)`).run(group, direct, [ann, bob].sort().join(':'));
    const member = db.prepare('INSERT INTO members (conversation_id, user_id, role, joined_at, read_seq, delivered_seq) VALUES (?, ?, ?, 10, ?, ?)');
    member.run(group, ann, 'owner', 3, 4); member.run(group, bob, 'member', 0, 2); member.run(group, cat, 'member', 1, 1);
    member.run(direct, ann, 'member', 1, 1); member.run(direct, bob, 'member', 0, 1);
    const msg = db.prepare(`INSERT INTO messages (conversation_id, seq, id, kind, sender_id, client_id, text, created_at, target_id, target_seq, edited_at, deleted_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    msg.run(group, 1, ids[0], 'message', ann, 'a1', 'hello, edited', 12, null, null, 13, null);
    msg.run(group, 2, ids[1], 'message', bob, 'b1', '', 12, null, null, null, 14);
    msg.run(group, 3, ids[2], 'edit', ann, 'a2', 'hello, edited', 13, ids[0], 1, null, null);
    msg.run(group, 4, ids[3], 'delete', bob, 'b2', '', 14, ids[1], 2, null, null);
    msg.run(direct, 1, ids[4], 'message', ann, 'a1', 'just us', 15, null, null, null, null);
  });
  const store = new SqliteStore({ path });
  try {
    const base = { conversationId: group, senderUsername: 'ann', sender: ann };
    assert.deepEqual(await store.readAfter(group, 0, 10), [
      { ...base, seq: 1, messageId: ids[0], kind: 'message', clientId: 'a1', text: 'hello, edited', createdAt: 12, editedAt: 13 },
      { ...base, seq: 2, messageId: ids[1], kind: 'message', sender: bob, senderUsername: 'bob', clientId: 'b1', text: '', createdAt: 12, deletedAt: 14 },
      { ...base, seq: 3, messageId: ids[2], kind: 'edit', clientId: 'a2', text: 'hello, edited', createdAt: 13, target: { messageId: ids[0], seq: 1 } },
      { ...base, seq: 4, messageId: ids[3], kind: 'delete', sender: bob, senderUsername: 'bob', clientId: 'b2', text: '', createdAt: 14, target: { messageId: ids[1], seq: 2 } },
    ]);
    assert.deepEqual((await store.readBefore(direct, 2, 10)).map((m) => [m.seq, m.sender, m.clientId, m.text]), [[1, ann, 'a1', 'just us']]);
    assert.equal((await store.message(group, ids[2]!))?.seq, 3);
    // The client-id index came along: a resend is the original, per conversation and sender.
    const resend = await store.append([{ conversationId: group, kind: 'message', messageId: newMessageId(), senderId: ann, clientId: 'a1', text: 'hello', createdAt: 20 }]);
    assert.deepEqual(resend.map((r) => r.ok && [r.duplicate, r.message.seq]), [[true, 1]]);
    // Unread counts and cursors read the migrated log: cat read up to 1, so bob's deleted message
    // does not count, nor do the edit and the delete; bob read nothing of ann's message.
    assert.equal((await store.viewForUser(group, cat))?.unread, 0);
    assert.equal((await store.viewForUser(group, bob))?.unread, 1);
    assert.equal((await store.viewForUser(direct, bob))?.lastMessage?.text, 'just us');
    // The log goes on: the next seq, and users and conversations made after the migration get keys of their own.
    const dan = newUserId();
    assert.equal(await store.createUser({ id: dan, username: 'dan', passwordHash: 'h', createdAt: 30 }), true);
    const fresh = (await store.createGroup({ id: newConversationId(), name: 'new', ownerId: dan, memberIds: [dan, ann], createdAt: 31 })).id;
    const sent = await store.append([
      { conversationId: group, kind: 'message', messageId: newMessageId(), senderId: cat, clientId: 'c1', text: 'next', createdAt: 32 },
      { conversationId: fresh, kind: 'message', messageId: newMessageId(), senderId: dan, clientId: 'a1', text: 'first', createdAt: 33 },
      { conversationId: fresh, kind: 'message', messageId: newMessageId(), senderId: ann, clientId: 'a1', text: 'not a resend: another sender', createdAt: 34 },
    ]);
    assert.deepEqual(sent.map((r) => r.ok && [r.duplicate, r.message.seq, r.message.senderUsername]), [[false, 5, 'cat'], [false, 1, 'dan'], [false, 2, 'ann']]);
    assert.deepEqual((await store.readAfter(fresh, 0, 10)).map((m) => [m.sender, m.text]), [[dan, 'first'], [ann, 'not a resend: another sender']]);
  } finally {
    await store.close();
  }
});

test('sqlite: migration 4 on a log with a message whose sender is unknown fails, and leaves the database as it was', () => {
  const conv = newConversationId();
  const path = version3Database((db) => {
    db.prepare(`INSERT INTO conversations (id, kind, name, created_at, updated_at, last_seq) VALUES (?, 'group', 'g', 1, 1, 1)`).run(conv);
    db.prepare(`INSERT INTO messages (conversation_id, seq, id, kind, sender_id, client_id, text, created_at) VALUES (?, 1, ?, 'message', ?, 'x', 'orphan', 1)`)
      .run(conv, newMessageId(), newUserId());
  });
  assert.throws(() => new SqliteStore({ path, checkpoints: 'inline' }), /NOT NULL constraint failed: messages_v4\.sender/);
  const db = new Database(path, { readonly: true });
  try {
    assert.deepEqual(db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get(), { v: 3 });
    assert.deepEqual(db.prepare('SELECT seq, text FROM messages').all(), [{ seq: 1, text: 'orphan' }]);
  } finally {
    db.close();
  }
});
