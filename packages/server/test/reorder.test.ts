// The per-node reorder stage of a cluster (gateway/reorder.ts): entries of a conversation that
// arrive out of seq order from different nodes are let through in order; a gap that outlasts
// the wait is let through as it is, for the connections to fill from the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '@confab/protocol';
import { Reorder } from '../src/gateway/reorder.js';
import { sleep } from './redis-env.js';

const entry = (conversationId: string, seq: number) => ({ message: { conversationId, seq } as Message });
type E = ReturnType<typeof entry>;

function harness(waitMs: number) {
  const out: string[] = [];
  const r = new Reorder<E>(waitMs, (e) => out.push(`${e.message.conversationId}:${e.message.seq}`));
  return { r, out, push: (cid: string, ...seqs: number[]) => { for (const s of seqs) r.push(entry(cid, s)); } };
}

test('entries that overtake an earlier one wait for it and leave in seq order', () => {
  const { r, out, push } = harness(10_000);
  push('c', 1, 3, 4);
  assert.deepEqual(out, ['c:1'], '3 and 4 wait for 2');
  assert.equal(r.heldFor('c' as never), 2);
  push('c', 2);
  assert.deepEqual(out, ['c:1', 'c:2', 'c:3', 'c:4']);
  assert.equal(r.heldFor('c' as never), 0);
  r.stop();
});

test('conversations are ordered independently of each other', () => {
  const { r, out, push } = harness(10_000);
  push('a', 5);
  push('b', 1);
  push('a', 7);
  push('b', 2);
  push('a', 6);
  assert.deepEqual(out, ['a:5', 'b:1', 'b:2', 'a:6', 'a:7']);
  r.stop();
});

test('an entry at or below the run (a duplicate, or a late one after a give-up) passes at once', () => {
  const { r, out, push } = harness(10_000);
  push('c', 10, 11, 10, 9);
  assert.deepEqual(out, ['c:10', 'c:11', 'c:10', 'c:9']);
  r.stop();
});

test('a gap that outlasts the wait is let through in order, and the run continues after it', async () => {
  const { r, out, push } = harness(30);
  push('c', 1, 4, 3);
  assert.deepEqual(out, ['c:1']);
  await sleep(80);
  assert.deepEqual(out, ['c:1', 'c:3', 'c:4'], 'released in seq order; the connections fill 2 from the store');
  push('c', 2, 5);
  assert.deepEqual(out, ['c:1', 'c:3', 'c:4', 'c:2', 'c:5'], '2 passes (connections drop it), 5 follows 4 at once');
  r.stop();
});

test('stop lets everything held through', () => {
  const { r, out, push } = harness(10_000);
  push('c', 1, 3);
  r.stop();
  assert.deepEqual(out, ['c:1', 'c:3']);
});

test('past 1,000 held entries a conversation stops waiting', () => {
  const { r, out, push } = harness(10_000);
  push('c', 1);
  for (let s = 3; s <= 1003; s++) push('c', s);
  assert.equal(out.length, 1 + 1001, 'everything released once the bound is passed');
  assert.deepEqual(out.slice(1, 4), ['c:3', 'c:4', 'c:5']);
  r.stop();
});
