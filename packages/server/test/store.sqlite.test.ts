// The store contract against the embedded SQLite adapter (a real file, WAL), and what only this
// adapter does: WAL checkpoints on a worker thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ConversationId, UserId } from '@confab/protocol';
import type { CheckpointReport } from '../src/adapters/sqlite/checkpoint-pass.js';
import { Checkpointer } from '../src/adapters/sqlite/checkpointer.js';
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
