// The write path of the PostgreSQL store: one `append` batch is one transaction (group commit)
// and one round trip. It exists apart from postgres-store.ts because it carries the cross-node
// argument: several nodes append to the same conversations at once, and each conversation's
// seq must stay gap-free and unique.
//
// The batch runs in `confab_append_v2` (migrations.ts, version 5), statement for statement the
// algorithm of SqliteStore:
// 1. Lock the batch's conversation rows in id order (`FOR NO KEY UPDATE`: the lock the seq
//    UPDATE takes anyway, taken up front and in one fixed order so two nodes never deadlock;
//    unlike `FOR UPDATE` it does not block foreign-key checks of new members). From there to
//    COMMIT no other transaction allocates a seq in these conversations, so the idempotency
//    lookup and the allocation are serialized per conversation.
// 2. Per entry: membership, idempotency lookup, edit/delete target checks,
//    `last_seq = last_seq + 1`, insert, target update (or the sender's cursors).
// A failure rolls the whole batch back, seqs included: no gap, nothing half-written.
//
// Measured first with the same steps as one prepared statement each from here (7 round trips
// per entry): 860 entries/s at any batch size; in the database: see docs/architecture.md.
import type { Pool } from 'pg';
import type { AppendFailure, AppendRequest, AppendResult } from '../../ports/store.js';
import { pgText, toMessage, type MessageRow } from './rows.js';

const APPEND = {
  name: 'cf_append_v2',
  text: `SELECT a.status, a.message, a.mv FROM confab_append_v2($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::bigint[], $8::uuid[])
         WITH ORDINALITY AS a(status, message, mv, i) ORDER BY a.i`,
};

/** Runs the batch as one statement on `c`: in autocommit it is its own transaction (all or nothing). */
export async function appendBatch(c: Pool, batch: readonly AppendRequest[]): Promise<AppendResult[]> {
  const { rows } = await c.query<{ status: 'ok' | 'duplicate' | AppendFailure; message: MessageRow | null; mv: number | null }>({
    ...APPEND,
    values: [
      batch.map((r) => r.conversationId), batch.map((r) => r.kind), batch.map((r) => r.messageId), batch.map((r) => r.senderId),
      batch.map((r) => r.clientId), batch.map((r) => pgText(r.text)), batch.map((r) => r.createdAt), batch.map((r) => r.targetId ?? null),
    ],
  });
  if (rows.length !== batch.length) throw new Error(`confab_append_v2 returned ${rows.length} results for ${batch.length} entries`);
  return rows.map((r): AppendResult => {
    if (r.status === 'ok' || r.status === 'duplicate') return { ok: true, message: toMessage(r.message!), duplicate: r.status === 'duplicate', membersVersion: r.mv ?? 0 };
    return { ok: false, reason: r.status };
  });
}
