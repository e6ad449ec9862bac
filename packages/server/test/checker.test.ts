// The fault checker must see every kind of fault it is there to count: each case below plants
// one and expects exactly that count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '@confab/protocol';
import { FaultChecker } from './checker.js';

const m = (seq: number, id = `m${seq}`, conversationId = 'c1', clientId = `k${seq}`): Message =>
  ({ conversationId, seq, messageId: id, kind: 'message', sender: 'u1', senderUsername: 'u', clientId, text: '', createdAt: seq });
const log = [m(1), m(2), m(3)];
const counts = (c: FaultChecker, truth: Message[] = log, followers = new Map([['c1', ['d1']]])) => {
  const r = c.check(truth, followers);
  return { lost: r.lost, duplicated: r.duplicated, outOfOrder: r.outOfOrder, phantom: r.phantom };
};

test('a clean run counts nothing', () => {
  const c = new FaultChecker();
  for (const x of log) { c.acked('a', x); c.seen('d1', x); }
  assert.deepEqual(counts(c), { lost: 0, duplicated: 0, outOfOrder: 0, phantom: 0 });
});

test('an acked entry missing from the log, or at its seq with another id, is lost', () => {
  const c = new FaultChecker();
  for (const x of log) c.seen('d1', x);
  c.acked('a', m(4));
  c.acked('a', m(2, 'other'));
  assert.equal(counts(c).lost, 2);
});

test('an entry a follower never got is lost', () => {
  const c = new FaultChecker();
  c.seen('d1', log[0]!);
  c.seen('d1', log[2]!);
  assert.equal(counts(c).lost, 1);
});

test('the same seq given twice, or a client id twice in the log, is a duplicate', () => {
  const c = new FaultChecker();
  for (const x of [...log, log[1]!]) c.seen('d1', x);
  assert.equal(counts(c).duplicated, 1);
  const c2 = new FaultChecker();
  const doubled = [m(1), m(2, 'm2', 'c1', 'k1')];
  for (const x of doubled) c2.seen('d1', x);
  assert.equal(counts(c2, doubled).duplicated, 1);
});

test('a seq lower than one already given is out of order', () => {
  const c = new FaultChecker();
  for (const x of [log[0]!, log[2]!, log[1]!]) c.seen('d1', x);
  assert.deepEqual(counts(c), { lost: 0, duplicated: 0, outOfOrder: 1, phantom: 0 });
});

test('an entry the log does not have is a phantom', () => {
  const c = new FaultChecker();
  for (const x of [...log, m(9), m(3, 'forged')]) c.seen('d1', x);
  assert.equal(counts(c).phantom, 2);
});
