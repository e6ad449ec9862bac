// PostgreSQL-specific behaviour the shared contract cannot show: several stores (several pools,
// as several nodes) writing the same conversations at once, concurrent migrations, and the
// mapping of connection failures to StoreUnavailableError with nothing half-written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import pg from 'pg';
import type { ConversationId, UserId } from '@confab/protocol';
import { PostgresStore, withDefaultUser } from '../src/adapters/postgres/postgres-store.js';
import { MIGRATIONS } from '../src/adapters/postgres/migrations.js';
import { isUnavailable } from '../src/adapters/postgres/unavailable.js';
import { StoreUnavailableError } from '../src/errors.js';
import { newConversationId, newDeviceId, newMessageId, newUserId } from '../src/ids.js';
import type { AppendRequest, AppendResult, Store } from '../src/ports/store.js';
import { postgresSuite } from './pg.js';

const msg = (conversationId: ConversationId, senderId: UserId, clientId: string, text = clientId): AppendRequest => ({
  conversationId, kind: 'message', messageId: newMessageId(), senderId, clientId, text, createdAt: Date.now(),
});

async function seed(store: Store, nUsers: number, nConversations: number): Promise<{ users: UserId[]; convs: ConversationId[] }> {
  const users: UserId[] = [];
  for (let i = 0; i < nUsers; i++) {
    const id = newUserId();
    await store.createUser({ id, username: `p${i}${id.slice(-10)}`, passwordHash: 'x', createdAt: Date.now() });
    users.push(id);
  }
  const convs: ConversationId[] = [];
  for (let i = 0; i < nConversations; i++) {
    convs.push((await store.createGroup({ id: newConversationId(), name: `g${i}`, ownerId: users[0]!, memberIds: users, createdAt: Date.now() })).id);
  }
  return { users, convs };
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

test('applied migrations never change: their SQL is what databases already ran', () => {
  // A fresh database runs every migration, an old one only the new ones: an edit to an applied
  // migration (or to appendFunction, which migrations 3, 4 and 5 are built from) would make the two differ.
  const digests = MIGRATIONS.map((m) => [m.version, createHash('sha256').update(m.sql).digest('hex').slice(0, 16)]);
  assert.deepEqual(digests, [[1, '84458000e77a245d'], [2, '0bdb840fc8e0cd6f'], [3, '418227ade5af4930'], [4, '8cfd54005484c4c4'], [5, '4dad3821484e5206']]);
});

test('connection failures are classified as unavailable, query errors are not', () => {
  const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  for (const code of ['57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '53300', 'ECONNREFUSED', 'ECONNRESET']) {
    assert.equal(isUnavailable(coded(code)), true, code);
  }
  assert.equal(isUnavailable(new Error('timeout exceeded when trying to connect')), true, 'pool timeout');
  assert.equal(isUnavailable(new Error('Connection terminated unexpectedly')), true);
  assert.equal(isUnavailable(new AggregateError([coded('ECONNREFUSED')], '')), true, 'several addresses refused');
  for (const code of ['23505', '42601', '22P02', '42P01']) assert.equal(isUnavailable(coded(code)), false, code);
  assert.equal(isUnavailable(new Error('boom')), false);
});

test('a store pointed at a closed port answers StoreUnavailableError (open, append, ping)', async () => {
  const url = `postgres://127.0.0.1:${await closedPort()}/confab`;
  await assert.rejects(PostgresStore.open({ url, connectTimeoutMs: 2000 }), StoreUnavailableError);
  const store = await PostgresStore.open({ url, migrate: false, connectTimeoutMs: 2000 });
  await assert.rejects(store.append([msg(newConversationId(), newUserId(), 'c1')]), StoreUnavailableError);
  await assert.rejects(store.ping(), StoreUnavailableError);
  await assert.rejects(store.readAfter(newConversationId(), 0, 10), StoreUnavailableError);
  await store.close();
  await assert.rejects(store.ping(), StoreUnavailableError, 'a closed store is unavailable too');
});

await postgresSuite('postgres store across nodes', (db) => {
  test('4 stores (4 pools, as 4 nodes) append to the same conversations at once: seq 1..N, each client id once', async () => {
    const stores = await Promise.all(Array.from({ length: 4 }, () => db.open({ poolSize: 2 })));
    try {
      const { users, convs } = await seed(stores[0]!, 4, 3);
      const PER_STORE = 500;
      const DUPS = 60;
      // Each store: its own 500 entries plus the same 60 shared client ids, shuffled into
      // batches of 1-40, so the shared ones race across stores (and within batches).
      const dupReq = (k: number) => msg(convs[k % convs.length]!, users[k % users.length]!, `dup-${k}`, `dup ${k}`);
      const results = await Promise.all(stores.map(async (store, s) => {
        const reqs = [
          ...Array.from({ length: PER_STORE }, (_, i) => msg(convs[(i + s) % convs.length]!, users[(i * 7 + s) % users.length]!, `s${s}-${i}`)),
          ...Array.from({ length: DUPS }, (_, k) => dupReq(k)),
        ].sort(() => Math.random() - 0.5);
        const out: { req: AppendRequest; res: AppendResult }[] = [];
        while (reqs.length > 0) {
          const batch = reqs.splice(0, 1 + Math.floor(Math.random() * 40));
          const res = await store.append(batch);
          batch.forEach((req, i) => out.push({ req, res: res[i]! }));
        }
        return out;
      }));
      const all = results.flat();
      assert.ok(all.every((r) => r.res.ok), 'every entry accepted');
      // Gap-free 1..N per conversation, and every (sender, client id) exactly once in the log.
      let total = 0;
      for (const c of convs) {
        const log = await stores[1]!.readAfter(c, 0, 10_000);
        assert.deepEqual(log.map((m) => m.seq), Array.from({ length: log.length }, (_, i) => i + 1), 'seq 1..N without gap');
        assert.equal((await stores[2]!.conversation(c))!.lastSeq, log.length);
        const keys = log.map((m) => `${m.sender}/${m.clientId}`);
        assert.equal(new Set(keys).size, keys.length, 'no client id twice');
        total += log.length;
      }
      assert.equal(total, 4 * PER_STORE + DUPS, 'every entry once, shared client ids once');
      // A raced client id: one store created it, the others got the same entry back as a duplicate.
      for (let k = 0; k < DUPS; k++) {
        const raced = all.filter((r) => r.req.clientId === `dup-${k}`).map((r) => r.res);
        assert.equal(raced.length, 4);
        const oks = raced.filter((r) => r.ok);
        assert.equal(oks.filter((r) => !r.duplicate).length, 1, `dup-${k} created once`);
        assert.equal(new Set(oks.map((r) => `${r.message.seq}/${r.message.messageId}`)).size, 1, `dup-${k}: one seq, one message id`);
      }
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  test('3 stores migrating a fresh schema at once: each migration applied once, all stores usable', async () => {
    const schema = db.freshSchema();
    const stores = await Promise.all(Array.from({ length: 3 }, () => db.open({ schema, poolSize: 1 })));
    try {
      const rows = await db.query<{ version: number }>(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`);
      assert.deepEqual(rows.map((r) => r.version), [1, 2, 3, 4, 5]);
      const { convs, users } = await seed(stores[0]!, 2, 1);
      const [a, b, c] = await Promise.all(stores.map((s, i) => s.append([msg(convs[0]!, users[0]!, `m${i}`)])));
      assert.deepEqual([a, b, c].map((r) => (r![0]!.ok ? r![0]!.message.seq : 0)).sort(), [1, 2, 3]);
      const again = await db.open({ schema, poolSize: 1 });
      await again.close();
      assert.equal((await db.query(`SELECT version FROM ${schema}.schema_migrations`)).length, 5, 'a later start applies nothing');
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  test('the server terminating the connection mid-batch: StoreUnavailableError, nothing written, the store recovers', async () => {
    const app = `confab_kill_${process.pid}`;
    const store = await db.open({ poolSize: 2, applicationName: app });
    try {
      const { users, convs } = await seed(store, 2, 1);
      const before = (await store.conversation(convs[0]!))!.lastSeq;
      const big = Array.from({ length: 8000 }, (_, i) => msg(convs[0]!, users[i % 2]!, `kill-${i}`));
      const pending = store.append(big);
      // Wait until the batch is running inside the database, then terminate that backend (57P01).
      for (let i = 0; i < 200; i++) {
        const rows = await db.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE '%confab_append%'", [app]);
        if (rows.length > 0) {
          await db.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
          break;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      await assert.rejects(pending, StoreUnavailableError);
      assert.equal((await store.conversation(convs[0]!))!.lastSeq, before, 'the batch rolled back: no seq allocated');
      assert.deepEqual(await store.readAfter(convs[0]!, before, 10), [], 'no entry written');
      const [r] = await store.append([msg(convs[0]!, users[0]!, 'kill-0')]);
      assert.ok(r?.ok && !r.duplicate, 'the resend commits, once');
      assert.equal(r.message.seq, before + 1, 'right after the last committed seq: no gap');
    } finally {
      await store.close();
    }
  });

  test('idle connections closed by the server (a restart, say) are reported and replaced', async () => {
    const app = `confab_idle_${process.pid}`;
    const lost: Error[] = [];
    const store = await db.open({ poolSize: 2, applicationName: app, onIdleError: (err) => lost.push(err) });
    try {
      await Promise.all([store.ping(), store.ping()]);
      const killed = await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [app]);
      assert.ok(killed.length > 0);
      let ok = false;
      for (let i = 0; i < 40 && !ok; i++) {
        await new Promise((r) => setTimeout(r, 25));
        ok = await store.ping().then(() => true, (err: unknown) => {
          assert.ok(err instanceof StoreUnavailableError, `only StoreUnavailableError meanwhile, got ${String(err)}`);
          return false;
        });
      }
      assert.ok(ok, 'the store answers again');
      assert.ok(lost.length > 0, 'the lost idle connections were reported');
    } finally {
      await store.close();
    }
  });

  test('a pool with no free connection answers StoreUnavailableError after the connect timeout; appends have their own connection', async () => {
    const store = await db.open({ poolSize: 1, connectTimeoutMs: 100 });
    // Another session holds the devices table, so a read of it through the store's one pooled
    // connection waits (and keeps that connection) until it lets go.
    const locker = new pg.Client({ connectionString: withDefaultUser(db.url) });
    await locker.connect();
    try {
      const { users, convs } = await seed(store, 1, 1);
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${db.schema}.devices IN ACCESS EXCLUSIVE MODE`);
      const held = store.device(newDeviceId());
      await new Promise((r) => setTimeout(r, 50));
      await assert.rejects(store.ping(), StoreUnavailableError);
      const [sent] = await store.append([msg(convs[0]!, users[0]!, 'while-reads-wait')]);
      assert.ok(sent?.ok, 'the write path does not wait for the pool');
      await locker.query('COMMIT');
      assert.equal(await held, null, 'the waiting read is not affected');
      await store.ping();
    } finally {
      await locker.end();
      await store.close();
    }
  });

  test('U+0000 in a text (valid Unicode, refused by PostgreSQL text) does not fail its batch', async () => {
    const store = await db.open({ poolSize: 1 });
    try {
      const { users, convs } = await seed(store, 1, 1);
      const [bad, good] = await store.append([msg(convs[0]!, users[0]!, 'nul', 'a\u0000b'), msg(convs[0]!, users[0]!, 'fine', 'fine')]);
      assert.ok(bad?.ok && good?.ok);
      assert.equal(bad.message.text, 'a\uFFFDb');
      assert.equal(await store.userByUsername('x\u0000y'), null);
    } finally {
      await store.close();
    }
  });
});
