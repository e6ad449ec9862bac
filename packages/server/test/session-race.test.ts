// The catch-up race, made deterministic: a store whose reads we release by hand, live
// entries injected while a page read is in flight, and a transport that records frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { asUserId, DEFAULT_LIMITS, ERROR_CODES, type Message, type ServerFrame } from '@confab/protocol';
import { ClientSession, type GatewayContext } from '../src/gateway/session.js';
import { LocalHub } from '../src/gateway/hub.js';
import { MemorySessions } from '../src/adapters/memory/memory-sessions.js';
import type { Store } from '../src/ports/store.js';
import { StoreUnavailableError } from '../src/errors.js';
import { Metrics } from '../src/metrics.js';
import { UserBudgets } from '../src/core/user-limits.js';

const C = '01a2026d-7606-705c-bed7-fb9a4afb2868';
const U = '01a2026d-759c-72cf-bcf4-95578b9fbd3a';
const entry = (seq: number): Message => ({ conversationId: C, seq, messageId: `m${seq}`, kind: 'message', sender: U, senderUsername: 'u', clientId: `c${seq}`, text: `t${seq}`, createdAt: seq });

function harness(opts: { failMemberOnce?: boolean } = {}) {
  let failMember = opts.failMemberOnce ?? false;
  const log: Message[] = [];
  const reads: { after: number; release: () => void }[] = [];
  const store = {
    readAfter: (_c: string, after: number, limit: number) => new Promise<Message[]>((resolve) => {
      reads.push({ after, release: () => resolve(log.filter((m) => m.seq > after).slice(0, limit)) });
    }),
    unreadCounts: () => Promise.resolve(new Map()),
    lastSeqsForUser: () => Promise.resolve(new Map([[C, log.at(-1)?.seq ?? 0]])),
    member: () => failMember ? (failMember = false, Promise.reject(new StoreUnavailableError('SQLITE_BUSY'))) : Promise.resolve({ userId: U, username: 'u', role: 'member', joinedAt: 0, readSeq: 0 }),
    conversation: () => Promise.resolve({ id: C, kind: 'group', name: 'g', createdAt: 0, updatedAt: 0, lastSeq: log.at(-1)?.seq ?? 0, memberCount: 1 }),
  } as unknown as Store;
  const frames: ServerFrame[] = [];
  const hub = new LocalHub();
  const ctx = {
    nodeId: 'n1', limits: { ...DEFAULT_LIMITS, maxPageSize: 3 }, store,
    auth: { authenticate: () => Promise.resolve({ userId: U, deviceId: 'd', username: 'u', expiresAt: Date.now() + 600_000 }) },
    hub, sessions: new MemorySessions(), log: pino({ level: 'silent' }),
    budgets: new UserBudgets(DEFAULT_LIMITS), maxOutboundBytes: 1024 * 1024,
    metrics: new Metrics({ connections: () => 1, pendingConnections: () => 0, outbound: () => ({ total: 0, max: 0 }), writerDepth: () => 0, busDropped: () => 0 }, { node: 'n1' }),
    presence: { connect: () => undefined, disconnect: () => undefined, unwatch: () => undefined },
  } as unknown as GatewayContext;
  const session = new ClientSession('s1', { send: (t) => { frames.push(JSON.parse(t) as ServerFrame); return Promise.resolve(); }, push: (t) => { frames.push(JSON.parse(t) as ServerFrame); }, pushShared: (f) => { frames.push(JSON.parse(f.text) as ServerFrame); }, close: () => undefined, backlog: () => 0, helloDone: () => undefined }, ctx);
  const commit = (seq: number) => { log.push(entry(seq)); session.deliverLive(entry(seq)); };
  const until = async (pred: () => boolean) => { for (let i = 0; i < 1000 && !pred(); i++) await new Promise((r) => setImmediate(r)); assert.ok(pred(), 'condition not reached'); };
  const delivered = () => frames.flatMap((f) => (f.type === 'sync.page' ? f.messages.map((m) => m.seq) : f.type === 'message' ? [f.message.seq] : []));
  return { log, reads, frames, session, commit, until, delivered, hub };
}

test('the hub delivers batched `messages` envelopes, and the one-entry form nodes of earlier versions send', async () => {
  const h = harness();
  h.session.onText(JSON.stringify({ type: 'hello', v: 1, token: 't' }));
  await h.until(() => h.frames.some((f) => f.type === 'welcome'));
  h.log.push(entry(1), entry(2), entry(3), entry(4), entry(5));
  h.hub.dispatch({ type: 'messages', entries: [1, 2, 3].map((seq) => ({ message: entry(seq), userIds: [asUserId(U)] })) });
  h.hub.dispatch({ type: 'message', message: entry(4), userIds: [asUserId(U)] });
  h.hub.dispatch({ type: 'messages', entries: [{ message: entry(5), userIds: [asUserId('01a2026d-759c-72cf-bcf4-000000000000')] }] });
  assert.deepEqual(h.delivered(), [1, 2, 3, 4], 'in order; an entry for other users only is not delivered');
});

test('entries committed during a page read are neither lost nor sent twice', async () => {
  const h = harness();
  for (let s = 1; s <= 5; s++) h.log.push(entry(s));
  h.session.onText(JSON.stringify({ type: 'hello', v: 1, token: 't', cursors: { [C]: 1 } }));
  await h.until(() => h.reads.length === 1);
  // While the first page (after 1) is being read, 6 and 7 are committed and published.
  h.commit(6);
  h.commit(7);
  h.reads[0]!.release(); // returns 2,3,4 (page size 3)
  await h.until(() => h.reads.length === 2);
  h.commit(8);
  h.reads[1]!.release(); // returns 5,6,7
  await h.until(() => h.reads.length === 3);
  h.reads[2]!.release(); // returns 8: short page, and liveMax (8) reached
  await h.until(() => h.frames.some((f) => f.type === 'sync.done'));
  h.commit(9); // live now
  assert.deepEqual(h.delivered(), [2, 3, 4, 5, 6, 7, 8, 9]);
  const done = h.frames.find((f) => f.type === 'sync.done');
  assert.deepEqual(done, { type: 'sync.done', conversationId: C, seq: 8 });
  assert.equal(h.frames.at(-1)?.type, 'message', 'the entry after sync.done is live');
});

test('a short last page does not end the catch-up while a newer live entry was seen', async () => {
  const h = harness();
  h.log.push(entry(1));
  h.session.onText(JSON.stringify({ type: 'hello', v: 1, token: 't', cursors: { [C]: 0 } }));
  await h.until(() => h.reads.length === 1);
  // The read was taken before 2 was committed: it will return only [1] (a short page)...
  const first = h.reads[0]!;
  const snapshot = h.log.slice();
  h.commit(2);
  h.log.length = 0;
  h.log.push(...snapshot);
  first.release();
  h.log.push(entry(2));
  // ...so the loop must read again rather than declare the stream live at seq 1.
  await h.until(() => h.reads.length === 2);
  h.reads[1]!.release();
  await h.until(() => h.frames.some((f) => f.type === 'sync.done'));
  assert.deepEqual(h.delivered(), [1, 2]);
});

test('a live gap is filled from the store, in order', async () => {
  const h = harness();
  h.session.onText(JSON.stringify({ type: 'hello', v: 1, token: 't' }));
  await h.until(() => h.frames.some((f) => f.type === 'welcome'));
  h.commit(1); // first entry of an untracked conversation: live from here
  h.log.push(entry(2)); // committed, but its publish was lost
  h.commit(3); // gap: 2 is missing
  await h.until(() => h.reads.length === 1);
  assert.equal(h.reads[0]!.after, 1);
  h.commit(4); // arrives while filling: noted, not sent
  h.reads[0]!.release(); // 2,3,4: a full page, so one more read
  await h.until(() => h.reads.length === 2);
  h.reads[1]!.release();
  await h.until(() => h.frames.some((f) => f.type === 'sync.done'));
  h.commit(5);
  assert.deepEqual(h.delivered(), [1, 2, 3, 4, 5]);
});

test('a store failure at the start of a catch-up does not wedge the conversation', async () => {
  const h = harness({ failMemberOnce: true });
  for (let s = 1; s <= 3; s++) h.log.push(entry(s));
  h.session.onText(JSON.stringify({ type: 'hello', v: 1, token: 't', cursors: { [C]: 1 } }));
  await h.until(() => h.frames.some((f) => f.type === 'error'));
  const err = h.frames.find((f) => f.type === 'error');
  assert.equal(err?.type === 'error' && err.code, 'unavailable');
  assert.deepEqual(err?.type === 'error' && err.details, [{ path: `cursors.${C}`, message: 'catch-up failed; send `sync` to retry' }]);
  // Live entries flow again, and a sync from the client's cursor is answered.
  h.commit(4);
  assert.deepEqual(h.delivered(), [4]);
  h.session.onText(JSON.stringify({ type: 'sync', id: 'again', conversationId: C, after: 1 }));
  await h.until(() => h.reads.length === 1);
  h.reads[0]!.release(); // 2,3,4: a full page (size 3), so one more read
  await h.until(() => h.reads.length === 2);
  h.reads[1]!.release();
  await h.until(() => h.frames.some((f) => f.type === 'sync.done' && f.id === 'again'));
  assert.deepEqual(h.delivered(), [4, 2, 3, 4]);
});

test('without a cursor, a conversation is live from hello: an overtaking entry does not hide earlier ones', async () => {
  const h = harness();
  for (let s = 1; s <= 5; s++) h.log.push(entry(s));
  h.session.onText(JSON.stringify({ type: 'hello', v: 1, token: 't' }));
  await h.until(() => h.frames.some((f) => f.type === 'welcome'));
  // 6 and 7 are committed on two nodes; 7's publish arrives first.
  h.log.push(entry(6));
  h.commit(7);
  await h.until(() => h.reads.length === 1);
  assert.equal(h.reads[0]!.after, 5, 'filled from where the device went live');
  h.reads[0]!.release();
  await h.until(() => h.frames.some((f) => f.type === 'sync.done'));
  h.session.deliverLive(entry(6)); // the late publish of 6: already delivered, dropped
  assert.deepEqual(h.delivered(), [6, 7]);
});

test('a draining node refuses sends, edits and deletes with unavailable (retryable), before anything is submitted', async () => {
  const h = harness();
  h.session.onText(JSON.stringify({ type: 'hello', v: 1, token: 't' }));
  await h.until(() => h.frames.some((f) => f.type === 'welcome'));
  h.session.drain();
  h.session.onText(JSON.stringify({ type: 'send', id: 's1', conversationId: C, clientId: 'c-drain', text: 'late' }));
  h.session.onText(JSON.stringify({ type: 'delete', id: 'd1', conversationId: C, clientId: 'c-drain2', messageId: '01a2026d-7606-705c-bed7-fb9a4afb2869' }));
  const errors = h.frames.filter((f) => f.type === 'error');
  assert.deepEqual(errors.map((f) => f.type === 'error' && [f.id, f.code]), [['s1', 'unavailable'], ['d1', 'unavailable']]);
  assert.equal(ERROR_CODES.unavailable.retryable, true);
});
